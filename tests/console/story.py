"""The article's story in a real browser (headless Chromium over WebDriver).

Usage: story.py URL SHORT_URL SHOTS_DIR. URL serves the console with tokens of an hour;
SHORT_URL the same with tokens of a few seconds (for the expired session). Every step writes a
screenshot NN-name.png into SHOTS_DIR. Exits non-zero at the first failed check.
"""
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import (NoAlertPresentException, NoSuchElementException,
                                        StaleElementReferenceException, WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

URL, SHORT_URL, SHOTS = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/"), sys.argv[3]
PRODUCER, CONSUMER = "111111", "222222"
PASSWORDS = {name: f"{name}-pass" for name in ("producer", "consumer", "observer", "creator")}
step_number = 0


def check(condition, message):
    if not condition:
        shot("FAILED")
        raise AssertionError(message)


def shot(name, show=None):
    """Writes the next screenshot; `show` (a CSS selector) is scrolled into view first."""
    global step_number
    if show:
        d.execute_script("document.querySelector(arguments[0]).scrollIntoView({block: 'center'})", show)
    step_number += 1
    path = os.path.join(SHOTS, f"{step_number:02d}-{name}.png")
    d.save_screenshot(path)
    print(f"  step {step_number:02d} {name}")


def text(css):
    # Waits: a click that submits a form returns before the next page is there, and a running
    # task's page reloads itself, so an element found may be gone before it is read.
    def read(driver):
        try:
            return (driver.find_element(By.CSS_SELECTOR, css).text,)
        except (NoSuchElementException, StaleElementReferenceException, WebDriverException):
            return None
    return WebDriverWait(d, 5).until(read)[0]


def present(css):
    return len(d.find_elements(By.CSS_SELECTOR, css)) > 0


def login(user, base=URL, password=None):
    d.get(base + "/console/login")
    d.find_element(By.ID, "username").send_keys(user)
    d.find_element(By.ID, "secret").send_keys(password or PASSWORDS[user])
    d.find_element(By.ID, "login").click()
    WebDriverWait(d, 5).until(lambda d: d.find_elements(By.ID, "user-account")
                              or d.find_elements(By.ID, "login-error"))


def logout():
    d.find_element(By.ID, "logout").click()
    WebDriverWait(d, 5).until(EC.presence_of_element_located((By.ID, "username")))


def images(region="all"):
    d.get(f"{URL}/console/images?region={region}")


def row_id(name):
    for row in d.find_elements(By.CSS_SELECTOR, "#images tbody tr"):
        if row.find_element(By.CSS_SELECTOR, "a.name").text == name:
            return row.get_attribute("data-image")
    raise AssertionError(f"no row named {name!r}")


def confirm():
    WebDriverWait(d, 5).until(EC.alert_is_present())
    d.switch_to.alert.accept()


def submit(css, confirmed=False):
    """Clicks a button that submits a form and waits for the next page, so that the checks
    after it never look at the old one."""
    button = d.find_element(By.CSS_SELECTOR, css)
    button.click()
    if confirmed:
        confirm()
    WebDriverWait(d, 5).until(lambda _: replaced(button))


def replaced(element):
    """True once `element`'s page is gone. Selenium's `staleness_of` waits for a stale-element
    error only, but Chromium may instead answer "Node with given id does not belong to the
    document" (a plain WebDriverException) while the old page is being replaced."""
    try:
        element.is_enabled()
        return False
    except WebDriverException:
        return True


def member_status(account):
    return text(f'tr[data-member="{account}"] .member-status')


options = webdriver.ChromeOptions()
options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--window-size=1280,800"):
    options.add_argument(flag)
d = webdriver.Chrome(service=Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")),
                     options=options)
d.set_page_load_timeout(20)
try:
    print("producer shares an image")
    login("producer", password="wrong-password")
    check("not correct" in text("#login-error"), "a wrong password gives a message")
    wrong_user = text("#login-error")
    login("nobody", password="wrong-password")
    check(text("#login-error") == wrong_user, "an unknown user gets the same message")
    shot("wrong-password")
    login("producer")
    check(text("#user-account") == PRODUCER, "producer is logged in")
    # Keyboard: the first Tab reaches the skip link, which is visible when focused.
    d.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    check(d.switch_to.active_element.get_attribute("class") == "skip", "skip link takes focus")
    shot("producer-saved-images")
    image = row_id("web-base-dfw")
    d.find_element(By.CSS_SELECTOR, f'tr[data-image="{image}"] details.gear summary').click()
    shot("gear-menu")
    d.find_element(By.CSS_SELECTOR, f'tr[data-image="{image}"] a[data-action="share"]').click()
    submit("#share-submit")
    check("Member can't be empty" in text("#share-error"), "an empty account shows the API's 400")
    shot("empty-account-refused")
    d.find_element(By.ID, "account").send_keys("not-a-number")
    submit("#share-submit")
    check("Account numbers are digits" in text("#flash"), "a non-numeric account is flagged")
    submit('tr[data-member="not-a-number"] button[data-action="remove-member"]', confirmed=True)
    check(not present('tr[data-member="not-a-number"]'), "the mistyped member is removed")
    d.find_element(By.ID, "share-bottom").click()
    d.find_element(By.ID, "account").send_keys(CONSUMER)
    submit("#share-submit")
    check(member_status(CONSUMER) == "Pending Acceptance", "producer sees Pending")
    shot("shared-pending", show="#sharing")
    logout()

    print("consumer sees the notification in All Regions and DFW, not ORD, and accepts")
    login("consumer")
    notice = f"pending-{image}"
    check(present(f"#{notice}"), "notification under All Regions")
    shot("consumer-notification-all-regions")
    Select(d.find_element(By.ID, "region")).select_by_value("ORD")
    WebDriverWait(d, 5).until(lambda d: "region=ORD" in d.current_url)
    check(not present(f"#{notice}"), "no notification under ORD")
    shot("consumer-no-notification-ord")
    images("DFW")
    check(present(f"#{notice}"), "notification under DFW")
    d.find_element(By.CSS_SELECTOR, f'#{notice} button.close').click()
    check(not d.find_element(By.ID, notice).is_displayed(), "closed for now")
    images("DFW")
    check(d.find_element(By.ID, notice).is_displayed(), "the notification stays for later")
    submit(f'#{notice} button[data-action="accept"]')
    check(not present(f"#{notice}"), "accepted: notification gone")
    check(text(f'tr[data-image="{image}"] .source') == "Shared Image", "Source says Shared Image")
    shot("consumer-accepted-shared-image")
    d.find_element(By.CSS_SELECTOR, f'tr[data-image="{image}"] details.gear summary').click()
    submit(f'tr[data-image="{image}"] button[data-action="remove-image"]', confirmed=True)
    check(not present(f'tr[data-image="{image}"]'), "removed image is gone from the list")
    check(not present(f"#{notice}"), "and no notification")
    shot("consumer-removed-image")
    logout()

    print("producer sees Rejected, removes the member and re-shares")
    login("producer")
    d.get(f"{URL}/console/images/DFW/{image}")
    check(member_status(CONSUMER) == "Rejected", "producer sees Rejected")
    shot("producer-sees-rejected", show="#sharing")
    submit(f'tr[data-member="{CONSUMER}"] button[data-action="remove-member"]', confirmed=True)
    check(not present(f'tr[data-member="{CONSUMER}"]'), "member removed")
    d.find_element(By.ID, "gear").click()
    d.find_element(By.CSS_SELECTOR, '#gear a[data-action="share"]').click()
    d.find_element(By.ID, "account").send_keys(CONSUMER)
    submit("#share-submit")
    check(member_status(CONSUMER) == "Pending Acceptance", "re-shared: Pending again")
    shot("producer-reshared", show="#sharing")

    print("the owner's Audit tab: the history, and who could use the image at a date")
    d.find_element(By.ID, "tab-audit").click()
    events = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#history-events .event")]
    check(events[0] == "Image registered" and events.count("Member added") >= 2,
          f"the history has the registration and the shares: {events}")
    check("Member, Pending Acceptance" in text(f'#access-accounts tr[data-account="{CONSUMER}"] .why'),
          "now the consumer is a pending member")
    shot("audit-tab")
    field = d.find_element(By.ID, "at")
    field.clear()
    field.send_keys("last tuesday")
    submit("#at-submit")
    check("RFC 3339" in text("#at-error"), "a bad date shows the API's message")
    field = d.find_element(By.ID, "at")
    field.clear()
    field.send_keys("2000-01-01")
    submit("#at-submit")
    check("did not exist yet" in text("#access-none"), "before the image existed")
    logout()

    print("consumer sees the notification again; a creator may not accept")
    login("consumer")
    check(present(f"#{notice}"), "notification again")
    shot("consumer-notification-again")
    d.get(f"{URL}/console/images/DFW/{image}/audit")
    check("No image found" in text("#error-message"), "the audit is the owner's only: 404")
    logout()
    login("creator")
    check(present(f"#{notice}"), "the creator sees the notification")
    check(not present(f'#{notice} button[data-action="accept"]'), "but no Accept button")
    check("administrator" in text(f"#{notice}"), "and is told who can accept")
    logout()

    print("observer sees no Share or Delete")
    login("observer")
    check(not present('a[data-action="share"]'), "no Share action in the list")
    d.get(f"{URL}/console/images/DFW/{image}")
    check(not present('a[data-action="share"]') and not present('button[data-action="delete"]'),
          "no Share or Delete on the detail page")
    shot("observer-no-share")
    logout()

    print("HTML in a name is shown as text; forged and missing CSRF are refused")
    login("producer")
    images("DFW")
    script_id = row_id("<script>alert('x')</script>")
    d.get(f"{URL}/console/images/DFW/{script_id}")
    check(text("#image-name") == "<script>alert('x')</script>", "the name shows as text")
    check("<b>not bold</b>" in text("#properties"), "the property shows as text")
    try:
        d.switch_to.alert
        check(False, "no script ran")
    except NoAlertPresentException:
        pass
    shot("script-name-escaped")
    d.get(f"{URL}/console/images/DFW/{image}/share")
    d.execute_script("document.querySelector('form[action$=\"/share\"] input[name=csrf]').value = 'forged';")
    d.find_element(By.ID, "account").send_keys("333333")
    submit("#share-submit")
    check("security token" in text("#error-message"), "a forged CSRF token is refused")
    shot("forged-csrf-refused")
    d.get(f"{URL}/console/images/DFW/{image}/share")
    d.execute_script("document.querySelector('form[action$=\"/share\"] input[name=csrf]').remove();")
    d.find_element(By.ID, "account").send_keys("333333")
    submit("#share-submit")
    check("security token" in text("#error-message"), "a missing CSRF token is refused")
    d.get(f"{URL}/console/images/DFW/{image}")
    check(not present('tr[data-member="333333"]'), "nothing was shared")
    check(d.get_cookie("imgshare_console")["httpOnly"], "the session cookie is HttpOnly")
    check(d.execute_script("return document.cookie.indexOf('imgshare_console') < 0 && localStorage.length === 0"),
          "nothing readable by scripts")

    print("import and export, with the task's progress")
    d.find_element(By.ID, "nav-tasks").click()
    d.find_element(By.ID, "container").send_keys("imports")
    d.find_element(By.ID, "object").send_keys("missing.vhd")
    submit("#import-submit")
    WebDriverWait(d, 20).until(lambda d: text("#task-status") in ("success", "failure"))
    check("Image not found for import" in text("#task-message"), "a missing object fails with its message")
    shot("import-failed")
    d.find_element(By.ID, "nav-tasks").click()
    d.find_element(By.ID, "container").send_keys("imports")
    d.find_element(By.ID, "object").send_keys("fixed.vhd")
    d.find_element(By.ID, "import-name").send_keys("imported-from-files")
    submit("#import-submit")
    WebDriverWait(d, 20).until(lambda d: text("#task-status") in ("success", "failure"))
    check(text("#task-status") == "success", "the import succeeds")
    shot("import-succeeded")
    d.find_element(By.CSS_SELECTOR, "#task-result a").click()
    check(text("#image-name") == "imported-from-files", "the imported image")
    d.find_element(By.ID, "gear").click()
    d.find_element(By.CSS_SELECTOR, '#gear a[data-action="export"]').click()
    d.find_element(By.ID, "export-container").send_keys("exports")
    submit("#export-submit")
    WebDriverWait(d, 20).until(lambda d: text("#task-status") in ("success", "failure"))
    check("Exported to exports/" in text("#task-result"), "the export succeeds")
    shot("export-succeeded")

    print("phone width")
    d.set_window_size(390, 844)
    images()
    check(d.find_element(By.ID, "region").is_displayed(), "the selector fits")
    shot("phone-saved-images")
    d.get(f"{URL}/console/images/DFW/{image}")
    shot("phone-image-detail", show="#sharing")
    d.set_window_size(1280, 800)
    logout()

    print("an expired session goes to login, then back to the page")
    login("producer", base=SHORT_URL)
    d.get(f"{SHORT_URL}/console/images?region=DFW")
    check(text("#user-account") == PRODUCER, "logged in on the short-token server")
    target = d.current_url
    time.sleep(4)
    d.refresh()
    check("Your session has ended" in text("#notice"), "back to login with a notice")
    shot("session-expired")
    d.find_element(By.ID, "username").send_keys("producer")
    d.find_element(By.ID, "secret").send_keys(PASSWORDS["producer"])
    d.find_element(By.ID, "login").click()
    check(d.current_url == target, "back on the page after logging in")
    print("CONSOLE STORY OK")
finally:
    d.quit()

//! `imgshare-bench list`, the measuring half: the list queries timed against their bare SQL,
//! the rendering, and the table of figures. The catalogue they read is built in `main.rs`.

use super::*;
/// Ways to write the SQL of a tenant's default page (Rackspace profile, no filters,
/// `member_status=accepted`, sorted by `created_at desc, id desc`, limit 25).
#[derive(Clone, Copy)]
enum ListSql {
    /// What `listing::list_images` builds, text and parameters alike: the page size is bound
    /// as the last parameter.
    AsListing,
    /// The same with the page size written as a literal.
    LiteralLimit,
    /// A proposed rewrite: each branch of the union keeps only its own first 25 rows in the
    /// page's order (with the page's filters), so the outer sort sees at most 100 candidates.
    TopPerBranch,
}

impl ListSql {
    fn sql(self) -> String {
        let columns = IMAGE_COLUMNS
            .split(", ")
            .map(|column| format!("i.{column}"))
            .collect::<Vec<_>>()
            .join(", ");
        match self {
            ListSql::AsListing | ListSql::LiteralLimit => {
                let limit = match self {
                    ListSql::AsListing => "?",
                    _ => "25",
                };
                format!(
                    "SELECT {columns} FROM proj_images i WHERE i.image_id IN (\
                     SELECT image_id FROM proj_images WHERE owner = ? AND region = ? \
                     UNION SELECT image_id FROM proj_images WHERE visibility = 'public' AND region = ? \
                     UNION SELECT image_id FROM proj_images WHERE owner IS NULL AND region = ? \
                     UNION SELECT m.image_id FROM proj_members m JOIN proj_images s ON s.image_id = m.image_id \
                     WHERE m.member_id = ? AND m.status = ? AND s.region = ? AND s.visibility <> 'public'\
                     ) AND i.status <> 'killed' AND i.os_hidden = 0 \
                     ORDER BY i.created_at DESC, i.image_id DESC LIMIT {limit}"
                )
            }
            ListSql::TopPerBranch => {
                let keep = "status <> 'killed' AND os_hidden = 0";
                let top = "ORDER BY created_at DESC, image_id DESC LIMIT 25";
                format!(
                    "SELECT {columns} FROM proj_images i WHERE i.image_id IN (\
                     SELECT image_id FROM (SELECT image_id FROM proj_images \
                       WHERE owner = ?1 AND region = ?2 AND {keep} {top}) AS owned \
                     UNION ALL SELECT image_id FROM (SELECT image_id FROM proj_images \
                       WHERE visibility = 'public' AND region = ?2 AND {keep} {top}) AS public \
                     UNION ALL SELECT image_id FROM (SELECT image_id FROM proj_images \
                       WHERE owner IS NULL AND region = ?2 AND {keep} {top}) AS unowned \
                     UNION ALL SELECT image_id FROM (SELECT s.image_id FROM proj_members m \
                       JOIN proj_images s ON s.image_id = m.image_id \
                       WHERE m.member_id = ?1 AND m.status = 'accepted' AND s.region = ?2 \
                       AND s.visibility <> 'public' AND s.status <> 'killed' AND s.os_hidden = 0 \
                       ORDER BY s.created_at DESC, s.image_id DESC LIMIT 25) AS shared\
                     ) AND i.status <> 'killed' AND i.os_hidden = 0 \
                     ORDER BY i.created_at DESC, i.image_id DESC LIMIT 25"
                )
            }
        }
    }

    fn params(self, tenant: &str) -> Vec<imgshare_sql::Value<'_>> {
        let text = imgshare_sql::Value::Text;
        match self {
            ListSql::AsListing | ListSql::LiteralLimit => {
                let mut params = vec![
                    text(tenant),
                    text("DFW"),
                    text("DFW"),
                    text("DFW"),
                    text(tenant),
                    text("accepted"),
                    text("DFW"),
                ];
                if let ListSql::AsListing = self {
                    params.push(imgshare_sql::Value::Int(25));
                }
                params
            }
            ListSql::TopPerBranch => vec![text(tenant), text("DFW")],
        }
    }

    /// Runs the query on the reader's connection; ids only.
    fn ids(self, reader: &Reader<'_>, tenant: &str) -> Result<Vec<String>> {
        let (sql, params) = (self.sql(), self.params(tenant));
        reading!(reader, |conn| Ok(conn.query_all(
            &sql,
            &params,
            |row| row.get::<String>(0)
        )??))
    }

    /// The query's plan: SQLite's `EXPLAIN QUERY PLAN` as a tree, PostgreSQL's `EXPLAIN` as it
    /// prints it.
    fn print_plan(self, reader: &Reader<'_>, tenant: &str, title: &str) -> Result<()> {
        let (sql, params) = (self.sql(), self.params(tenant));
        let lines: Vec<String> = reading!(reader, |conn| plan_lines(conn, &sql, &params))?;
        let explain = match reader {
            Reader::Sqlite(_) => "EXPLAIN QUERY PLAN",
            #[cfg(feature = "postgres")]
            Reader::Postgres(_) => "EXPLAIN",
        };
        println!("{explain} of {title} (tenant {tenant}, DFW):");
        for line in lines {
            println!("  {line}");
        }
        Ok(())
    }
}

fn plan_lines<C: Sql + ?Sized>(
    conn: &C,
    sql: &str,
    params: &[imgshare_sql::Value<'_>],
) -> Result<Vec<String>> {
    if conn.dialect() == Dialect::Postgres {
        return Ok(conn.query_all(&format!("EXPLAIN {sql}"), params, |row| {
            row.get::<String>(0)
        })??);
    }
    let rows: Vec<(i64, i64, String)> =
        conn.query_all(&format!("EXPLAIN QUERY PLAN {sql}"), params, |row| {
            Ok::<_, imgshare_sql::SqlError>((row.get(0)?, row.get(1)?, row.get(3)?))
        })??;
    let mut depth: BTreeMap<i64, usize> = BTreeMap::new();
    Ok(rows
        .into_iter()
        .map(|(id, parent, detail)| {
            let level = depth.get(&parent).map_or(0, |level| level + 1);
            depth.insert(id, level);
            format!("{}{detail}", "  ".repeat(level))
        })
        .collect())
}

/// The two queries `listing::page_extras` runs for a page: tags and properties.
fn page_extras(reader: &Reader<'_>, ids: &[String]) -> Result<listing::PageExtras> {
    reading!(reader, |conn| Ok(listing::page_extras(conn, ids)?))
}

/// Times what `listing::list_images` does in Rust once its queries have run: decoding the rows
/// into images and rendering the page's JSON. The queries themselves run untimed.
fn time_rendering(engine: &Engine, reader: &Reader<'_>, tenant: &str) -> Result<(Duration, usize)> {
    let (sql, params) = (ListSql::AsListing.sql(), ListSql::AsListing.params(tenant));
    let rows: Vec<ImageRow> = reading!(reader, |conn| Ok(conn.query_all(
        &sql,
        &params,
        |row| image_from_row(row)
    )??))?;
    let ids: Vec<String> = rows.iter().map(|row| row.id().to_owned()).collect();
    let extras = page_extras(reader, &ids)?;
    let started = Instant::now();
    let images = listing::render_rows(engine.profile(), rows, extras)?;
    let page = serde_json::json!({
        "images": images,
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    });
    let elapsed = started.elapsed();
    Ok((elapsed, page["images"].as_array().map_or(0, Vec::len)))
}

fn page_ids(page: &Value) -> Vec<String> {
    page["images"]
        .as_array()
        .map(|images| {
            images
                .iter()
                .filter_map(|image| image["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Fails unless the restated SQL matches what the engine parses and returns.
fn check_reproduction(engine: &Engine, reader: &Reader<'_>, tenants: &[&str]) -> Result<()> {
    let query = parse_image_list_query("", &QueryDialect::RACKSPACE)
        .map_err(|error| anyhow::anyhow!("{}", error.message))?;
    ensure!(
        query.sort
            == [
                (SortKey::CreatedAt, SortDir::Desc),
                (SortKey::Id, SortDir::Desc)
            ]
            && query.limit == 25
            && query.member_status == MemberStatusFilter::Accepted,
        "the default list query changed; update ListSql"
    );
    for tenant in tenants {
        let ctx = tenant_ctx(tenant)?;
        let expected = page_ids(&engine.list_images(&ctx, "")?);
        for variant in [
            ListSql::AsListing,
            ListSql::LiteralLimit,
            ListSql::TopPerBranch,
        ] {
            let restated = variant.ids(reader, tenant)?;
            ensure!(
                expected == restated,
                "restated SQL returns other rows than list_images for tenant {tenant}"
            );
        }
    }
    Ok(())
}

fn tenant_ctx(tenant: &str) -> Result<Context> {
    Ok(Context::new(
        Actor::tenant(tenant, "bench", ROLES),
        dfw()?,
        Utc::now(),
    ))
}

struct Series {
    name: String,
    times: Vec<Duration>,
}

impl Series {
    fn new(name: impl Into<String>) -> Self {
        Series {
            name: name.into(),
            times: Vec::new(),
        }
    }

    fn time<T>(&mut self, record: bool, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let value = f()?;
        let elapsed = started.elapsed();
        if record {
            self.times.push(elapsed);
        }
        Ok(value)
    }
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn print_table(series: &[Series]) {
    let width = series
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(9)
        .max(9);
    println!(
        "{:<width$}  {:>9}  {:>9}  {:>9}  {:>9}  {:>7}",
        "operation", "p50 µs", "p99 µs", "max µs", "mean µs", "samples"
    );
    for s in series {
        let mut times = s.times.clone();
        times.sort();
        let n = times.len();
        if n == 0 {
            continue;
        }
        let at = |q: f64| times[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
        let mean = times.iter().sum::<Duration>() / n as u32;
        println!(
            "{:<width$}  {:>9.1}  {:>9.1}  {:>9.1}  {:>9.1}  {:>7}",
            s.name,
            micros(at(0.50)),
            micros(at(0.99)),
            micros(times[n - 1]),
            micros(mean),
            n
        );
    }
}

fn next_query(page: &Value) -> Option<String> {
    page["next"]
        .as_str()
        .and_then(|link| link.strip_prefix("/v2/images?"))
        .map(str::to_owned)
}

/// Times each operation in its own pass over the same random consumers (or images), so that
/// one operation does not warm the database's cache for the next one on the same tenant.
pub(super) fn measure(
    engine: &Engine,
    reader: &Reader<'_>,
    catalogue: &Catalogue,
    samples: usize,
    seed: u64,
) -> Result<()> {
    ensure!(
        !catalogue.shares.is_empty(),
        "no consumer has an accepted share in DFW; nothing to measure"
    );
    ensure!(!catalogue.crowded.is_empty(), "no image has members");
    let crowd_floor = catalogue.crowded[0].3 * 3 / 4;
    let crowded: Vec<_> = catalogue
        .crowded
        .iter()
        .filter(|(_, _, _, n)| *n >= crowd_floor)
        .collect();
    let heaviest = catalogue
        .shares
        .iter()
        .max_by_key(|(_, images)| images.len())
        .map(|(tenant, images)| (tenant.as_str(), images.len()))
        .unwrap_or(("", 0));
    let heaviest_all: i64 = reading!(reader, |conn| conn
        .query_first(
            "SELECT count(*) FROM proj_members WHERE member_id = ?1",
            params![heaviest.0],
            |row| row.get::<i64>(0),
        )??
        .context("a count without a row"))?;
    let median_shares = {
        let mut lengths: Vec<usize> = catalogue.shares.iter().map(|(_, i)| i.len()).collect();
        lengths.sort_unstable();
        lengths[lengths.len() / 2]
    };

    let mut rng = Rng(seed ^ 0xBE7C);
    let probe: Vec<&str> = (0..20)
        .map(|_| {
            catalogue.shares[rng.below(catalogue.shares.len())]
                .0
                .as_str()
        })
        .chain([heaviest.0])
        .collect();
    check_reproduction(engine, reader, &probe)?;

    let load_before = load_average();
    let warmup = samples.min(200);
    let rounds = warmup + samples;
    // The same draws for every pass: a consumer, one of its accepted shares, a crowded image.
    let draws: Vec<(&str, Uuid, usize)> = (0..rounds)
        .map(|_| {
            let (tenant, shared) = &catalogue.shares[rng.below(catalogue.shares.len())];
            let image = Uuid::parse_str(&shared[rng.below(shared.len())]);
            image.map(|image| (tenant.as_str(), image, rng.below(crowded.len())))
        })
        .collect::<Result<_, _>>()?;
    let contexts: Vec<Context> = draws
        .iter()
        .map(|(tenant, _, _)| tenant_ctx(tenant))
        .collect::<Result<_>>()?;
    let mut next_queries = Vec::with_capacity(rounds);
    let mut first_pages = Vec::with_capacity(rounds);
    for ctx in &contexts {
        let page = engine.list_images(ctx, "")?;
        ensure!(!page_ids(&page).is_empty(), "empty default page");
        next_queries.push(next_query(&page));
        first_pages.push(page_ids(&page));
    }
    let heavy_ctx = tenant_ctx(heaviest.0)?;
    let heavy_rounds = (rounds / 10).max(1);
    let heavy_warmup = (warmup / 10).min(heavy_rounds - 1);

    let mut table = Vec::new();
    let pass = |name: String,
                rounds: usize,
                warmup: usize,
                op: &mut dyn FnMut(usize) -> Result<Value>|
     -> Result<Series> {
        let mut series = Series::new(name);
        for round in 0..rounds {
            let value = series.time(round >= warmup, || op(round))?;
            ensure!(!value.is_null(), "{}: no answer", series.name);
        }
        Ok(series)
    };
    let non_empty = |page: Value| -> Result<Value> {
        ensure!(!page_ids(&page).is_empty(), "empty page");
        Ok(page)
    };
    let ids = |ids: Vec<String>| -> Result<Value> {
        ensure!(!ids.is_empty(), "no rows");
        Ok(Value::from(ids))
    };

    table.push(pass(
        "GET /v2/images (default page of 25)".into(),
        rounds,
        warmup,
        &mut |i| non_empty(engine.list_images(&contexts[i], "")?),
    )?);
    table.push(pass(
        "  its SQL alone, LIMIT ? bound (as listing.rs)".into(),
        rounds,
        warmup,
        &mut |i| ids(ListSql::AsListing.ids(reader, draws[i].0)?),
    )?);
    table.push(pass(
        "  its SQL alone, LIMIT 25 literal".into(),
        rounds,
        warmup,
        &mut |i| ids(ListSql::LiteralLimit.ids(reader, draws[i].0)?),
    )?);
    table.push(pass(
        "  its SQL alone, proposed top 25 per branch".into(),
        rounds,
        warmup,
        &mut |i| ids(ListSql::TopPerBranch.ids(reader, draws[i].0)?),
    )?);
    table.push(pass(
        "  its tags + properties queries alone (25 ids)".into(),
        rounds,
        warmup,
        &mut |i| {
            let (tags, properties) = page_extras(reader, &first_pages[i])?;
            Ok(Value::from(tags.len() + properties.len()))
        },
    )?);
    let mut rendering = Series::new("  its row decoding + JSON alone (25 images)");
    for (round, (tenant, _, _)) in draws.iter().enumerate() {
        let (elapsed, count) = time_rendering(engine, reader, tenant)?;
        ensure!(count > 0, "nothing rendered");
        if round >= warmup {
            rendering.times.push(elapsed);
        }
    }
    table.push(rendering);
    table.push(pass(
        "GET /v2/images?member_status=all&limit=25".into(),
        rounds,
        warmup,
        &mut |i| non_empty(engine.list_images(&contexts[i], "member_status=all&limit=25")?),
    )?);
    table.push(pass(
        "GET /v2/images?marker=… (2nd default page)".into(),
        rounds,
        warmup,
        &mut |i| match &next_queries[i] {
            Some(query) => non_empty(engine.list_images(&contexts[i], query)?),
            None => bail!("the default page of {} has no next link", draws[i].0),
        },
    )?);
    table.push(pass(
        format!(
            "GET /v2/images, heaviest consumer ({} accepted)",
            heaviest.1
        ),
        heavy_rounds,
        heavy_warmup,
        &mut |_| non_empty(engine.list_images(&heavy_ctx, "")?),
    )?);
    table.push(pass(
        "  …its SQL alone, proposed top 25 per branch".into(),
        heavy_rounds,
        heavy_warmup,
        &mut |_| ids(ListSql::TopPerBranch.ids(reader, heaviest.0)?),
    )?);
    table.push(pass(
        format!("  …member_status=all ({heaviest_all} shares)"),
        heavy_rounds,
        heavy_warmup,
        &mut |_| non_empty(engine.list_images(&heavy_ctx, "member_status=all&limit=25")?),
    )?);
    let owners: Vec<(Context, Uuid, i64)> = crowded
        .iter()
        .map(|(image_id, owner, region, count)| {
            let ctx = Context::new(
                Actor::tenant(owner, "bench", ROLES),
                Region::parse(region)?,
                Utc::now(),
            );
            Ok((ctx, Uuid::parse_str(image_id)?, *count))
        })
        .collect::<Result<_>>()?;
    table.push(pass(
        format!(
            "GET /v2/images/{{id}}/members (owner, {}-{} members)",
            crowded.last().map_or(0, |c| c.3),
            crowded[0].3
        ),
        rounds,
        warmup,
        &mut |i| {
            let (ctx, image_id, count) = &owners[draws[i].2];
            let view = engine.members_view(ctx, *image_id)?;
            let listed = view["members"].as_array().map_or(0, Vec::len);
            ensure!(
                listed as i64 == *count,
                "members_view listed {listed} of {count}"
            );
            Ok(view)
        },
    )?);
    table.push(pass(
        "  its fold alone: Engine::load(image stream)".into(),
        rounds,
        warmup,
        &mut |i| {
            let loaded = engine.load(StreamId::Image(owners[draws[i].2].1))?;
            Ok(Value::from(loaded.version))
        },
    )?);
    table.push(pass(
        "GET /v2/images/{id} (consumer, accepted share)".into(),
        rounds,
        warmup,
        &mut |i| {
            let view = engine.image_view(&contexts[i], draws[i].1)?;
            ensure!(view["status"] == "active", "shared image is not active");
            Ok(view)
        },
    )?);

    println!(
        "Sampled {} consumers with accepted DFW shares (median {median_shares} accepted shares); \
         each operation timed in its own pass over the same {samples} draws after {warmup} \
         warm-up rounds; load average {load_before} before, {} after.",
        catalogue.shares.len(),
        load_average()
    );
    println!();
    print_table(&table);
    println!();
    ListSql::AsListing.print_plan(reader, probe[0], "the default page as listing.rs builds it")?;
    println!();
    ListSql::TopPerBranch.print_plan(reader, probe[0], "the proposed top-25-per-branch rewrite")?;
    Ok(())
}

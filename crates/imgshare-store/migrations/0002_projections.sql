-- Read models ("projections"). Derived from the events table only; `rebuild` empties them
-- and replays the log. Written in the same transaction as the events they reflect.

CREATE TABLE projection_checkpoints (
    name     TEXT PRIMARY KEY,
    -- The last log position reflected in the tables.
    position INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO projection_checkpoints (name, position) VALUES ('catalogue', 0);

-- One row per image that is not deleted. Times are in the API's format (seconds, UTC, "Z"),
-- so that filters and sorts compare what users see.
CREATE TABLE proj_images (
    image_id         TEXT PRIMARY KEY,
    region           TEXT NOT NULL,
    owner            TEXT,               -- NULL for provider base images
    name             TEXT,
    status           TEXT NOT NULL,
    visibility       TEXT NOT NULL,      -- as stored; the profile decides how it is shown
    protected        INTEGER NOT NULL,
    os_hidden        INTEGER NOT NULL,
    checksum         TEXT,
    size             INTEGER,
    virtual_size     INTEGER,
    os_hash_algo     TEXT,
    os_hash_value    TEXT,
    container_format TEXT,
    disk_format      TEXT,
    min_disk         INTEGER NOT NULL,
    min_ram          INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) WITHOUT ROWID;

-- The three ways into a default list, each an index range: own images, public images,
-- and (through proj_members) images shared with the caller.
CREATE INDEX proj_images_by_owner ON proj_images (owner, region, created_at);
CREATE INDEX proj_images_by_visibility ON proj_images (visibility, region, created_at);
-- Admins (Glance profile) list a whole region.
CREATE INDEX proj_images_by_region ON proj_images (region, created_at);

CREATE TABLE proj_image_properties (
    image_id TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (image_id, key)
) WITHOUT ROWID;

CREATE INDEX proj_image_properties_by_value ON proj_image_properties (key, value, image_id);

CREATE TABLE proj_image_tags (
    image_id TEXT NOT NULL,
    tag      TEXT NOT NULL,
    PRIMARY KEY (image_id, tag)
) WITHOUT ROWID;

CREATE INDEX proj_image_tags_by_tag ON proj_image_tags (tag, image_id);

CREATE TABLE proj_members (
    image_id   TEXT NOT NULL,
    member_id  TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (image_id, member_id)
) WITHOUT ROWID;

-- A consumer's shares by status: the third way into a default list.
CREATE INDEX proj_members_by_member ON proj_members (member_id, status, image_id);

CREATE TABLE proj_tasks (
    task_id    TEXT PRIMARY KEY,
    region     TEXT NOT NULL,
    owner      TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    task_type  TEXT NOT NULL,
    status     TEXT NOT NULL,
    input      TEXT NOT NULL,   -- JSON
    result     TEXT,            -- JSON
    message    TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    expires_at TEXT
) WITHOUT ROWID;

CREATE INDEX proj_tasks_by_owner ON proj_tasks (owner, region, created_at);

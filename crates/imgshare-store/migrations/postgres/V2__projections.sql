-- Read models, as SQLite's 0002_projections.sql (see there for what each table and index is
-- for). SQLite's WITHOUT ROWID has no PostgreSQL counterpart and needs none.

CREATE TABLE projection_checkpoints (
    name     TEXT COLLATE "C" PRIMARY KEY,
    position BIGINT NOT NULL
);

INSERT INTO projection_checkpoints (name, position) VALUES ('catalogue', 0);

CREATE TABLE proj_images (
    image_id         TEXT COLLATE "C" PRIMARY KEY,
    region           TEXT COLLATE "C" NOT NULL,
    owner            TEXT COLLATE "C",
    name             TEXT COLLATE "C",
    status           TEXT COLLATE "C" NOT NULL,
    visibility       TEXT COLLATE "C" NOT NULL,
    protected        BIGINT NOT NULL,
    os_hidden        BIGINT NOT NULL,
    checksum         TEXT COLLATE "C",
    size             BIGINT,
    virtual_size     BIGINT,
    os_hash_algo     TEXT COLLATE "C",
    os_hash_value    TEXT COLLATE "C",
    container_format TEXT COLLATE "C",
    disk_format      TEXT COLLATE "C",
    min_disk         BIGINT NOT NULL,
    min_ram          BIGINT NOT NULL,
    created_at       TEXT COLLATE "C" NOT NULL,
    updated_at       TEXT COLLATE "C" NOT NULL
);

CREATE INDEX proj_images_by_owner ON proj_images (owner, region, created_at);
CREATE INDEX proj_images_by_visibility ON proj_images (visibility, region, created_at);
CREATE INDEX proj_images_by_region ON proj_images (region, created_at);

CREATE TABLE proj_image_properties (
    image_id TEXT COLLATE "C" NOT NULL,
    key      TEXT COLLATE "C" NOT NULL,
    value    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (image_id, key)
);

CREATE INDEX proj_image_properties_by_value ON proj_image_properties (key, value, image_id);

CREATE TABLE proj_image_tags (
    image_id TEXT COLLATE "C" NOT NULL,
    tag      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (image_id, tag)
);

CREATE INDEX proj_image_tags_by_tag ON proj_image_tags (tag, image_id);

CREATE TABLE proj_members (
    image_id   TEXT COLLATE "C" NOT NULL,
    member_id  TEXT COLLATE "C" NOT NULL,
    status     TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (image_id, member_id)
);

CREATE INDEX proj_members_by_member ON proj_members (member_id, status, image_id);

CREATE TABLE proj_tasks (
    task_id    TEXT COLLATE "C" PRIMARY KEY,
    region     TEXT COLLATE "C" NOT NULL,
    owner      TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    task_type  TEXT COLLATE "C" NOT NULL,
    status     TEXT COLLATE "C" NOT NULL,
    input      TEXT COLLATE "C" NOT NULL,
    result     TEXT COLLATE "C",
    message    TEXT COLLATE "C",
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    expires_at TEXT COLLATE "C"
);

CREATE INDEX proj_tasks_by_owner ON proj_tasks (owner, region, created_at);

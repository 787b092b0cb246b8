//! Reads: one aggregate folded from its stream, API views, lists over the read models, and
//! `can_boot`. Nothing here writes.

use std::sync::Arc;

use imgshare_core::{
    access, queries, Aggregate, Context, DomainError, Image, Operation, Region, StreamId, Task,
};
use imgshare_projection::query::QueryDialect;
use imgshare_projection::{
    listing, tables, ImagePage, ImageQuery, ImageView, MemberList, MemberView, ProjectionError,
    TaskList, TaskPage, TaskQuery, TaskView, Viewer,
};
use uuid::Uuid;

use crate::log::{self};

use super::*;

impl Engine {
    /// Folds a stream as it is now (from the cache when it is at the log's version).
    pub fn load(&self, stream: StreamId) -> Result<Loaded, EngineError> {
        let (state, version) = reading!(self, |conn| self.load_shared(conn, stream))?;
        Ok(Loaded {
            state: Arc::unwrap_or_clone(state),
            version,
        })
    }

    /// The stream's state at the log's version, shared with the cache (no copy when it is
    /// cached), and that version.
    fn load_shared<C: Sql + ?Sized>(
        &self,
        conn: &C,
        stream: StreamId,
    ) -> Result<(Arc<Aggregate>, u64), EngineError> {
        if let Some(cached) = self.cached_at_log_version(conn, stream)? {
            return Ok(cached);
        }
        let loaded = load_stream(conn, stream)?;
        let state = Arc::new(loaded.state);
        if loaded.version > 0 {
            if let Ok(mut cache) = self.cache.lock() {
                cache.put(stream, loaded.version, Arc::clone(&state));
            }
        }
        Ok((state, loaded.version))
    }

    /// The stream's cached state if it is at the log's version (one indexed lookup, no fold).
    fn cached_at_log_version<C: Sql + ?Sized>(
        &self,
        conn: &C,
        stream: StreamId,
    ) -> Result<Option<(Arc<Aggregate>, u64)>, EngineError> {
        let version = log::stream_version(conn, &stream.to_string())?.unwrap_or(0);
        if version == 0 {
            return Ok(None);
        }
        Ok(self.cached(stream, version).map(|state| (state, version)))
    }

    /// The image's state, whoever asks (no access check): for backends and auditors.
    pub fn image_state(&self, image_id: Uuid) -> Result<Option<Image>, EngineError> {
        let (state, _) = reading!(self, |conn| self
            .load_shared(conn, StreamId::Image(image_id)))?;
        Ok(state.as_image().cloned())
    }

    /// The ids of `region`'s images in `status`, oldest first, from the read model: how a
    /// restarted server finds imports it left `importing`.
    pub fn image_ids_in_status(
        &self,
        region: &Region,
        status: imgshare_core::ImageStatus,
    ) -> Result<Vec<Uuid>, EngineError> {
        reading!(self, |conn| {
            let ids = tables::image_ids_in_status(conn, region, status)?;
            ids.iter()
                .map(|id| {
                    Uuid::try_parse(id).map_err(|error| EngineError::CorruptStream {
                        stream: format!("image-{id}"),
                        version: 0,
                        reason: format!("read model holds a bad image id: {error}"),
                    })
                })
                .collect()
        })
    }

    /// The image as the caller in `ctx` may see it; 404 if it cannot.
    pub fn get_image(&self, ctx: &Context, image_id: Uuid) -> Result<Image, EngineError> {
        self.profile.authorize(&ctx.actor, Operation::GetImage)?;
        reading!(self, |conn| self.visible_image(conn, ctx, image_id))
    }

    /// The image's state if the caller in `ctx` may see it, copied out of the shared state once.
    fn visible_image<C: Sql + ?Sized>(
        &self,
        conn: &C,
        ctx: &Context,
        image_id: Uuid,
    ) -> Result<Image, EngineError> {
        let (state, _) = self.load_shared(conn, StreamId::Image(image_id))?;
        self.if_visible(&state, ctx, image_id)
    }

    /// The image in `state` if the caller in `ctx` may see it, copied out; the 404 otherwise.
    fn if_visible(
        &self,
        state: &Aggregate,
        ctx: &Context,
        image_id: Uuid,
    ) -> Result<Image, EngineError> {
        match state.as_image() {
            Some(image) if access::can_see(&self.profile, image, &ctx.actor, &ctx.region) => {
                Ok(image.clone())
            }
            _ => Err(DomainError::ImageNotFound {
                image_id: image_id.to_string(),
            }
            .into()),
        }
    }

    /// [`Engine::image`], answered on the calling thread only when that cannot wait: on a SQLite
    /// file whose read connection is free at once, for an image whose state is in the cache at
    /// the log's version. `None` means "call [`Engine::image`] where blocking is fine"
    /// (PostgreSQL, an in-memory database, the read connection busy with another read such as a
    /// long list, or an image that would have to be folded from the log).
    ///
    /// For an async server: such a read costs a few microseconds (one indexed lookup of the
    /// stream's version, in pages a served image keeps in the page cache), less than handing
    /// the request to a blocking thread and back.
    pub fn try_image_now(
        &self,
        ctx: &Context,
        image_id: Uuid,
    ) -> Option<Result<ImageView, EngineError>> {
        if self.runs_on_postgres() {
            return None;
        }
        if let Err(refused) = self.profile.authorize(&ctx.actor, Operation::GetImage) {
            return Some(Err(refused.into()));
        }
        let guard = match self.reader.as_ref()?.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::WouldBlock) => return None,
            Err(std::sync::TryLockError::Poisoned(_)) => return Some(Err(EngineError::Poisoned)),
        };
        let cached = on_db!(&*guard, |conn| self
            .cached_at_log_version(conn, StreamId::Image(image_id)));
        drop(guard);
        let (state, _) = match cached {
            Ok(Some(cached)) => cached,
            Ok(None) => return None,
            Err(error) => return Some(Err(error)),
        };
        Some(
            self.if_visible(&state, ctx, image_id)
                .map(|image| ImageView::new(&self.profile, image)),
        )
    }

    /// The task as its owner may see it at `ctx.now`; 404 otherwise.
    pub fn get_task(&self, ctx: &Context, task_id: Uuid) -> Result<Task, EngineError> {
        self.profile.authorize(&ctx.actor, Operation::ReadTasks)?;
        let loaded = self.load(StreamId::Task(task_id))?;
        match loaded.state.as_task() {
            Some(task) if task.is_visible_to(&ctx.actor.tenant_id, &ctx.region, ctx.now) => {
                Ok(task.clone())
            }
            _ => Err(DomainError::TaskNotFound {
                task_id: task_id.to_string(),
            }
            .into()),
        }
    }

    /// The image as the caller in `ctx` may see it, with the profile's document
    /// (`GET /v2/images/{id}`); 404 if it cannot.
    pub fn image(&self, ctx: &Context, image_id: Uuid) -> Result<ImageView, EngineError> {
        Ok(ImageView::new(
            &self.profile,
            self.get_image(ctx, image_id)?,
        ))
    }

    /// `GET /v2/images/{id}` as JSON.
    pub fn image_view(
        &self,
        ctx: &Context,
        image_id: Uuid,
    ) -> Result<serde_json::Value, EngineError> {
        Ok(self.image(ctx, image_id)?.into_json())
    }

    /// The members of an image the caller may read (`GET /v2/images/{id}/members`).
    pub fn members(&self, ctx: &Context, image_id: Uuid) -> Result<MemberList, EngineError> {
        let image = self.get_image(ctx, image_id)?;
        let members = queries::readable_members(&self.profile, &image, &ctx.actor)?
            .into_iter()
            .map(|member| MemberView::new(image_id, member.clone()))
            .collect();
        Ok(MemberList { members })
    }

    /// `GET /v2/images/{id}/members` as JSON.
    pub fn members_view(
        &self,
        ctx: &Context,
        image_id: Uuid,
    ) -> Result<serde_json::Value, EngineError> {
        Ok(self.members(ctx, image_id)?.into_json())
    }

    /// One member of an image, if the caller may read it
    /// (`GET /v2/images/{id}/members/{member_id}`).
    pub fn member(
        &self,
        ctx: &Context,
        image_id: Uuid,
        member_id: &str,
    ) -> Result<MemberView, EngineError> {
        let image = self.get_image(ctx, image_id)?;
        let member = queries::readable_member(&self.profile, &image, &ctx.actor, member_id)?;
        Ok(MemberView::new(image_id, member.clone()))
    }

    /// `GET /v2/images/{id}/members/{member_id}` as JSON.
    pub fn member_view(
        &self,
        ctx: &Context,
        image_id: Uuid,
        member_id: &str,
    ) -> Result<serde_json::Value, EngineError> {
        Ok(self.member(ctx, image_id, member_id)?.into_json())
    }

    /// The task in full, as its owner may see it (`GET /v2/tasks/{id}`); 404 otherwise.
    pub fn task(&self, ctx: &Context, task_id: Uuid) -> Result<TaskView, EngineError> {
        Ok(TaskView::full(&self.profile, self.get_task(ctx, task_id)?))
    }

    /// `GET /v2/tasks/{id}` as JSON.
    pub fn task_view(
        &self,
        ctx: &Context,
        task_id: Uuid,
    ) -> Result<serde_json::Value, EngineError> {
        Ok(self.task(ctx, task_id)?.into_json())
    }

    fn dialect(&self) -> QueryDialect {
        self.profile.query_dialect()
    }

    fn viewer<'a>(&self, ctx: &'a Context) -> Viewer<'a> {
        Viewer {
            tenant_id: &ctx.actor.tenant_id,
            region: &ctx.region,
            is_admin: self.profile.is_cloud_admin(&ctx.actor),
        }
    }

    /// One page of the images the caller can see (`GET /v2/images`), served from the read
    /// models; a query the profile refuses is [`ErrorKind::Invalid`](imgshare_core::ErrorKind)
    /// with the HTTP query's message.
    ///
    /// ```
    /// use imgshare_core::{Actor, Command, Context, ImageCommand, ImageOrigin, NewImage, Region};
    /// use imgshare_store::{Engine, ImageQuery, SortDir, SortKey};
    ///
    /// let engine = Engine::in_memory()?;
    /// let owner = Actor::tenant("111111", "alice", &["cloudImages:admin"]);
    /// let ctx = Context::new(owner, Region::parse("DFW")?, chrono::Utc::now());
    /// for name in ["b", "a", "c"] {
    ///     let origin = ImageOrigin::Snapshot { server_id: "srv-1".into() };
    ///     let image = NewImage { name: Some(name.into()), ..NewImage::default() };
    ///     let command = ImageCommand::Register { origin, image };
    ///     engine.execute(&ctx, Command::Image { image_id: uuid::Uuid::new_v4(), command })?;
    /// }
    /// let query = ImageQuery::new().sort(SortKey::Name, SortDir::Asc).limit(2);
    /// let first = engine.images(&ctx, &query)?;
    /// let names: Vec<_> = first.images.iter().map(|v| v.image().name.clone()).collect();
    /// assert_eq!(names, [Some("a".to_owned()), Some("b".to_owned())]);
    /// let rest = engine.images(&ctx, &query.after(first.next.unwrap()))?;
    /// assert_eq!(rest.images.len(), 1);
    /// assert_eq!(rest.next, None);
    ///
    /// // The HTTP API's rules and messages.
    /// let refused = engine.images(&ctx, &ImageQuery::new().param("sort_dir", "up")).unwrap_err();
    /// assert_eq!(refused.to_string(), "Invalid sort direction: up");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn images(&self, ctx: &Context, query: &ImageQuery) -> Result<ImagePage, EngineError> {
        self.profile.authorize(&ctx.actor, Operation::ListImages)?;
        let parsed = query
            .validate(&self.dialect())
            .map_err(ProjectionError::from)?;
        let viewer = self.viewer(ctx);
        reading!(self, |conn| {
            Ok(listing::image_page(
                conn,
                &self.profile,
                &viewer,
                &parsed,
                query.as_query_string(),
            )?)
        })
    }

    /// `GET /v2/images?{raw_query}` as JSON.
    pub fn list_images(
        &self,
        ctx: &Context,
        raw_query: &str,
    ) -> Result<serde_json::Value, EngineError> {
        // Authorization comes before the query's checks, as in the typed call.
        self.profile.authorize(&ctx.actor, Operation::ListImages)?;
        let query: ImageQuery = raw_query.parse().map_err(ProjectionError::from)?;
        Ok(self.images(ctx, &query)?.into_json())
    }

    /// One page of the caller's unexpired tasks in this region (`GET /v2/tasks`).
    pub fn tasks(&self, ctx: &Context, query: &TaskQuery) -> Result<TaskPage, EngineError> {
        self.profile.authorize(&ctx.actor, Operation::ReadTasks)?;
        let types: Vec<&str> = self
            .profile
            .task_types()
            .iter()
            .map(|t| t.as_str())
            .collect();
        let parsed = query
            .validate(&self.dialect(), &types)
            .map_err(ProjectionError::from)?;
        let viewer = self.viewer(ctx);
        reading!(self, |conn| {
            Ok(listing::task_page(
                conn,
                &viewer,
                ctx.now,
                &parsed,
                query.as_query_string(),
            )?)
        })
    }

    /// `GET /v2/tasks?{raw_query}` as JSON.
    pub fn list_tasks(
        &self,
        ctx: &Context,
        raw_query: &str,
    ) -> Result<serde_json::Value, EngineError> {
        self.profile.authorize(&ctx.actor, Operation::ReadTasks)?;
        let query: TaskQuery = raw_query.parse().map_err(ProjectionError::from)?;
        Ok(self.tasks(ctx, &query)?.into_json())
    }

    /// The caller's tasks about an image ([`Task::is_about_image`]) in `GET /v2/tasks`'s
    /// default order, in full (`GET /v2/images/{id}/tasks`); 404 if the image is not visible
    /// to the caller.
    pub fn image_tasks(&self, ctx: &Context, image_id: Uuid) -> Result<TaskList, EngineError> {
        self.get_image(ctx, image_id)?;
        self.profile.authorize(&ctx.actor, Operation::ReadTasks)?;
        let viewer = self.viewer(ctx);
        let tasks = reading!(self, |conn| listing::visible_tasks(conn, &viewer, ctx.now))?;
        let image_id = image_id.to_string();
        let tasks = tasks
            .into_iter()
            .filter(|task| task.is_about_image(&image_id))
            .map(|task| TaskView::full(&self.profile, task))
            .collect();
        Ok(TaskList { tasks })
    }

    /// `GET /v2/images/{id}/tasks` as JSON.
    pub fn list_image_tasks(
        &self,
        ctx: &Context,
        image_id: Uuid,
    ) -> Result<serde_json::Value, EngineError> {
        Ok(self.image_tasks(ctx, image_id)?.into_json())
    }

    /// May `tenant_id` boot a new server from `image_id` in `region`? For compute backends.
    ///
    /// True for the owner, for public images, and for members in any status (pending, accepted
    /// or rejected); false for anyone else, for another region, and for images that are not
    /// active (deleted, deactivated, still saving).
    ///
    /// ```
    /// use imgshare_core::{Actor, Command, Context, ImageActivated, ImageCommand, ImageOrigin,
    ///                     NewImage, Region};
    /// use imgshare_store::Engine;
    ///
    /// let engine = Engine::in_memory()?;
    /// let (dfw, ord) = (Region::parse("DFW")?, Region::parse("ORD")?);
    /// let owner = Actor::tenant("111111", "alice", &["cloudImages:admin"]);
    /// let ctx = Context::new(owner, dfw.clone(), chrono::Utc::now());
    /// let image_id = uuid::Uuid::new_v4();
    /// let data = ImageActivated {
    ///     size: 512, checksum: "0123456789abcdef0123456789abcdef".into(),
    ///     virtual_size: None, os_hash_algo: None, os_hash_value: None,
    /// };
    /// let image = NewImage {
    ///     container_format: Some("ovf".into()), disk_format: Some("vhd".into()),
    ///     data: Some(data), ..NewImage::default()
    /// };
    /// let origin = ImageOrigin::Snapshot { server_id: "srv-1".into() };
    /// engine.execute(&ctx, Command::Image { image_id, command: ImageCommand::Register { origin, image } })?;
    /// let share = ImageCommand::AddMember { member_id: "222222".into() };
    /// engine.execute(&ctx, Command::Image { image_id, command: share })?;
    ///
    /// assert!(engine.can_boot("222222", image_id, &dfw)?); // a pending member may boot
    /// assert!(!engine.can_boot("222222", image_id, &ord)?); // not in another region
    /// assert!(!engine.can_boot("333333", image_id, &dfw)?); // nor may a stranger
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn can_boot(
        &self,
        tenant_id: &str,
        image_id: Uuid,
        region: &Region,
    ) -> Result<bool, EngineError> {
        Ok(self
            .image_state(image_id)?
            .is_some_and(|image| access::can_boot(&self.profile, &image, tenant_id, region)))
    }
}

//! The service catalog the built-in identity hands out: the regions this deployment serves.

use serde_json::{json, Value};

/// One region's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionEndpoints {
    /// The region, upper-case as Rackspace spells it (`DFW`); clients compare it exactly.
    pub region: String,
    /// The Cloud Images public URL, e.g. `https://dfw.images.example.com/v2`. A `{tenant_id}`
    /// in it is replaced by the token's tenant.
    pub images_url: String,
    /// The object store base URL, e.g. `https://storage.dfw.example.com/v1`; the `cloudFiles`
    /// endpoint is `<base>/<storage account>`. None: no `cloudFiles` endpoint in this region.
    pub object_store_url: Option<String>,
}

/// Every region's endpoints, in the order the catalog lists them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    /// The regions; the first is the default region of users without one.
    pub regions: Vec<RegionEndpoints>,
}

impl Catalog {
    /// The default `RAX-AUTH:defaultRegion`: the first region.
    pub fn default_region(&self) -> Option<&str> {
        self.regions.first().map(|region| region.region.as_str())
    }

    /// `access.serviceCatalog` for `tenant`, whose Cloud Files account is `storage_account`:
    /// `cloudImages` (type `image`) in every region, `cloudFiles` (type `object-store`) in the
    /// regions with an object store.
    pub fn render(&self, tenant: &str, storage_account: &str) -> Value {
        let images: Vec<Value> = self
            .regions
            .iter()
            .map(|region| {
                json!({
                    "region": region.region,
                    "tenantId": tenant,
                    "publicURL": region.images_url.replace("{tenant_id}", tenant),
                })
            })
            .collect();
        let files: Vec<Value> = self
            .regions
            .iter()
            .filter_map(|region| {
                let base = region.object_store_url.as_deref()?;
                Some(json!({
                    "region": region.region,
                    "tenantId": storage_account,
                    "publicURL": format!("{}/{storage_account}", base.trim_end_matches('/')),
                }))
            })
            .collect();
        let mut services = vec![json!({
            "name": "cloudImages",
            "type": "image",
            "endpoints": images,
        })];
        if !files.is_empty() {
            services.push(json!({
                "name": "cloudFiles",
                "type": "object-store",
                "endpoints": files,
            }));
        }
        Value::Array(services)
    }
}

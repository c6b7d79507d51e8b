//! The built-in services a `#startup` entry can name, each turned into a [`Service`].

use stage_config::{ModuleKind, ModuleSpec, NodeConfig};
use stage_core::service::Service;

/// The service for `module` with stage id `id`, or why it cannot run.
pub fn create(
    config: &NodeConfig,
    module: &ModuleSpec,
    id: &str,
) -> Result<Box<dyn Service>, String> {
    let _ = (config, id);
    match module.kind {
        ModuleKind::Index => Err("the index service is not available in this version".into()),
        ModuleKind::Ticket => Err("the ticket service is not available in this version".into()),
        ModuleKind::Route => Err("the route service is not available in this version".into()),
        ModuleKind::Curl => Err("the curl service is not available in this version".into()),
        ModuleKind::Lua => Err("a Lua module is a stage, not a service".into()),
    }
}

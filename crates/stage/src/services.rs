//! The built-in services a `#startup` entry can name, each turned into a [`Service`].

use stage_config::{ModuleKind, ModuleSpec, NodeConfig};
use stage_core::service::Service;

/// The service for `module` with stage id `id`, or why it cannot run.
pub fn create(
    config: &NodeConfig,
    module: &ModuleSpec,
    id: &str,
) -> Result<Box<dyn Service>, String> {
    match module.kind {
        ModuleKind::Index => {
            let section = config.index_section(id).cloned().unwrap_or_default();
            Ok(Box::new(stage_index::IndexService::new(
                stage_index::Config {
                    dir: config.base_dir.join(&section.dir),
                    ..section
                },
            )))
        }
        ModuleKind::Ticket => {
            let section = config.ticket_section(id).cloned().unwrap_or_default();
            match stage_ticket::TicketService::new(section) {
                Ok(service) => Ok(Box::new(service)),
                Err(e) => Err(format!("ticket service '{id}': {e}")),
            }
        }
        ModuleKind::Route => {
            let section =
                config
                    .route_section(id)
                    .cloned()
                    .unwrap_or_else(|| stage_route::RouteConfig {
                        service: id.to_owned(),
                        ..stage_route::RouteConfig::default()
                    });
            Ok(Box::new(stage_route::RouteService::new(section)))
        }
        ModuleKind::Curl => Err("the curl service is not available in this version".into()),
        ModuleKind::Lua => Err("a Lua module is a stage, not a service".into()),
    }
}

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
            let bytes = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            Ok(Box::new(stage_index::IndexService::new(
                stage_index::Config {
                    dir: config.base_dir.join(&section.dir),
                    limits: stage_index::Limits {
                        max_id_bytes: bytes(section.max_id_bytes),
                        max_value_bytes: bytes(section.max_value_bytes),
                    },
                    durability: stage_index::Durability::from_fsync_ms(section.fsync_ms),
                    ..stage_index::Config::default()
                },
            )))
        }
        ModuleKind::Ticket => {
            let section = config.ticket_section(id).cloned().unwrap_or_default();
            let engine = stage_ticket::TicketConfig {
                capacity: usize::try_from(section.capacity).unwrap_or(usize::MAX),
                categories: section
                    .categories
                    .into_iter()
                    .map(|category| (category.name, category.limit))
                    .collect(),
                ..stage_ticket::TicketConfig::default()
            };
            match stage_ticket::TicketService::new(engine) {
                Ok(service) => Ok(Box::new(service)),
                Err(e) => Err(format!("ticket service '{id}': {e}")),
            }
        }
        ModuleKind::Route => {
            let section = config.route_section(id).copied().unwrap_or_default();
            Ok(Box::new(stage_route::RouteService::new(
                stage_route::RouteConfig {
                    service: id.to_owned(),
                    probe_timeout_ms: section.probe_timeout_ms,
                    ..stage_route::RouteConfig::default()
                },
            )))
        }
        ModuleKind::Curl => Err("the curl service is not available in this version".into()),
        ModuleKind::Lua => Err("a Lua module is a stage, not a service".into()),
    }
}

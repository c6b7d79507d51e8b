//! The built-in services a `#startup` entry can name, each built from its configuration
//! section and started as a [`stage_core::service::Service`].

use stage_config::{ModuleKind, ModuleSpec, NodeConfig};
use stage_core::service::{self, Placement, ServiceHandle};

/// Why a service did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Its configuration or kind does not allow it.
    #[error("{0}")]
    Refused(String),
    /// Its thread did not start.
    #[error("cannot start its thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Starts the service for `module` at `placement` (its stage id among them), or says why it
/// cannot run.
pub fn start(
    config: &NodeConfig,
    module: &ModuleSpec,
    placement: Placement,
) -> Result<ServiceHandle, ServiceError> {
    let id = placement.id.clone();
    let id = id.as_str();
    match module.kind {
        ModuleKind::Index => {
            let section = config.index_section(id).cloned().unwrap_or_default();
            let bytes = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            Ok(service::spawn(placement, stage_index::IndexService::new(
                stage_index::Config {
                    dir: config.base_dir.join(&section.dir),
                    limits: stage_index::Limits {
                        max_id_bytes: bytes(section.max_id_bytes),
                        max_value_bytes: bytes(section.max_value_bytes),
                    },
                    durability: stage_index::Durability::from_fsync_ms(section.fsync_ms),
                    ..stage_index::Config::default()
                },
            ))?)
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
                Ok(ticket) => Ok(service::spawn(placement, ticket)?),
                Err(e) => Err(ServiceError::Refused(format!("ticket service '{id}': {e}"))),
            }
        }
        ModuleKind::Route => {
            let section = config.route_section(id).copied().unwrap_or_default();
            Ok(service::spawn(placement, stage_route::RouteService::new(
                stage_route::RouteConfig {
                    service: id.to_owned(),
                    probe_timeout_ms: section.probe_timeout_ms,
                    ..stage_route::RouteConfig::default()
                },
            ))?)
        }
        ModuleKind::Curl => Err(ServiceError::Refused(
            "the curl service is not available in this version".into(),
        )),
        ModuleKind::Lua => Err(ServiceError::Refused(
            "a Lua module is a stage, not a service".into(),
        )),
    }
}

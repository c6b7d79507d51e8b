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
            let index = stage_index::IndexService::new(stage_index::Config {
                dir: config.base_dir.join(&section.dir),
                ..section
            });
            Ok(service::spawn(placement, index)?)
        }
        ModuleKind::Ticket => {
            let section = config.ticket_section(id).cloned().unwrap_or_default();
            match stage_ticket::TicketService::new(section) {
                Ok(ticket) => Ok(service::spawn(placement, ticket)?),
                Err(e) => Err(ServiceError::Refused(format!("ticket service '{id}': {e}"))),
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
            Ok(service::spawn(
                placement,
                stage_route::RouteService::new(section),
            )?)
        }
        ModuleKind::Curl => Err(ServiceError::Refused(
            "the curl service is not available in this version".into(),
        )),
        ModuleKind::Lua => Err(ServiceError::Refused(
            "a Lua module is a stage, not a service".into(),
        )),
    }
}

//! Typed configuration sections of the service modules (`index`, `curl`, `=ticket`, `=route`).
//! Each has a closed schema (decision 24) and defaults for everything; a missing or `null`
//! section means "all defaults". The index, ticket and route sections are read into the
//! engines' own settings types, which hold those defaults.

pub mod curl;
pub mod index;
pub mod route;
pub mod ticket;

//! The section of a `=ticket` module (`ticket.md` §3):
//! `"=ticket+NAME": [capacity, { "category": limit, … }]` or a bare capacity.

use serde_json::{Map, Value};
use stage_ticket::TicketConfig;

use crate::at::At;
use crate::ConfigError;

/// Parses a section into the engine's settings (`None` or `null` = its defaults); the hold time
/// is not configurable and keeps its default.
pub(crate) fn parse(value: Option<&Value>, at: &At) -> Result<TicketConfig, ConfigError> {
    let mut config = TicketConfig::default();
    match value {
        None | Some(Value::Null) => {}
        Some(number @ Value::Number(_)) => config.capacity = at.positive_size(number)?,
        Some(Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                let at = at.index(index);
                match item {
                    Value::Number(_) => config.capacity = at.positive_size(item)?,
                    Value::Object(limits) => add_categories(&mut config, limits, &at)?,
                    other => return Err(at.expected("a capacity or an object of limits", other)),
                }
            }
        }
        Some(other) => return Err(at.expected("a capacity or an array", other)),
    }
    Ok(config)
}

/// `{ name: limit, … }`, appended to the categories of `config`.
fn add_categories(
    config: &mut TicketConfig,
    limits: &Map<String, Value>,
    at: &At,
) -> Result<(), ConfigError> {
    for (name, limit) in limits {
        let at = at.key(name);
        if name.is_empty() {
            return Err(at.error("a category needs a name"));
        }
        if config.categories.iter().any(|(known, _)| known == name) {
            return Err(at.error(format!("category {name:?} is defined twice")));
        }
        config.categories.push((name.clone(), at.integer(limit)?));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<TicketConfig, String> {
        super::parse(Some(&value), &At::file("f").key("=ticket+ticket")).map_err(|e| e.to_string())
    }

    fn category(name: &str, limit: i64) -> (String, i64) {
        (name.to_owned(), limit)
    }

    #[test]
    fn defaults() {
        let config = super::parse(None, &At::file("f")).unwrap_or_default();
        assert_eq!(config.capacity, 10_000);
        assert!(config.categories.is_empty());
        assert_eq!(parse(json!(null)).ok(), Some(TicketConfig::default()));
    }

    #[test]
    fn reference_example() {
        let config = parse(json!([100000, {"odbc": 10, "room": -50}])).unwrap_or_default();
        assert_eq!(config.capacity, 100_000);
        assert_eq!(
            config.categories,
            [category("odbc", 10), category("room", -50)]
        );
    }

    #[test]
    fn other_accepted_forms() {
        assert_eq!(parse(json!(500)).ok().map(|c| c.capacity), Some(500));
        let config = parse(json!([{"a": 0}, 7, {"b": 1}, 9])).unwrap_or_default();
        assert_eq!(config.capacity, 9);
        assert_eq!(config.categories, [category("a", 0), category("b", 1)]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse(json!([{"odbc": "10"}])).err().as_deref(),
            Some("f: =ticket+ticket[0].odbc: expected an integer, found \"10\"")
        );
        assert!(parse(json!([{"a": 1}, {"a": 2}])).is_err());
        assert!(parse(json!([{"": 1}])).is_err());
        assert!(parse(json!([0])).is_err());
        assert!(parse(json!(["x"])).is_err());
        assert!(parse(json!({"odbc": 10})).is_err());
        assert!(parse(json!("x")).is_err());
        assert!(parse(json!([{"a": 1.5}])).is_err());
    }
}

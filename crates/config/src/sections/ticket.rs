//! The section of a `=ticket` module (`ticket.md` §3):
//! `"=ticket+NAME": [capacity, { "category": limit, … }]` or a bare capacity.

use serde_json::{Map, Value};

use crate::at::At;
use crate::ConfigError;

/// A category defined in the configuration (it never closes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketCategory {
    /// The category name (the `@cat` of the messages).
    pub name: String,
    /// `> 0`: tickets out at once, further requests wait; `< 0`: `|limit|` out at once, further
    /// requests are rejected; `0`: every request is rejected.
    pub limit: i64,
}

/// Settings of one ticket service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketConfig {
    /// Most requests (holders and waiters together) tracked at once (default 10000).
    pub capacity: u64,
    /// Configured categories, in the order written.
    pub categories: Vec<TicketCategory>,
}

impl Default for TicketConfig {
    fn default() -> Self {
        TicketConfig {
            capacity: 10_000,
            categories: Vec::new(),
        }
    }
}

impl TicketConfig {
    /// Parses a section (`None` or `null` = defaults).
    pub(crate) fn parse(value: Option<&Value>, at: &At) -> Result<TicketConfig, ConfigError> {
        let mut config = TicketConfig::default();
        match value {
            None | Some(Value::Null) => {}
            Some(number @ Value::Number(_)) => config.capacity = at.positive(number)?,
            Some(Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    let at = at.index(index);
                    match item {
                        Value::Number(_) => config.capacity = at.positive(item)?,
                        Value::Object(limits) => config.add_categories(limits, &at)?,
                        other => {
                            return Err(at.expected("a capacity or an object of limits", other))
                        }
                    }
                }
            }
            Some(other) => return Err(at.expected("a capacity or an array", other)),
        }
        Ok(config)
    }

    /// `{ name: limit, … }`.
    fn add_categories(&mut self, limits: &Map<String, Value>, at: &At) -> Result<(), ConfigError> {
        for (name, limit) in limits {
            let at = at.key(name);
            if name.is_empty() {
                return Err(at.error("a category needs a name"));
            }
            if self
                .categories
                .iter()
                .any(|category| &category.name == name)
            {
                return Err(at.error(format!("category {name:?} is defined twice")));
            }
            self.categories.push(TicketCategory {
                name: name.clone(),
                limit: at.integer(limit)?,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<TicketConfig, String> {
        TicketConfig::parse(Some(&value), &At::file("f").key("=ticket+ticket"))
            .map_err(|e| e.to_string())
    }

    fn category(name: &str, limit: i64) -> TicketCategory {
        TicketCategory {
            name: name.to_owned(),
            limit,
        }
    }

    #[test]
    fn defaults() {
        let config = TicketConfig::parse(None, &At::file("f")).unwrap_or_default();
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

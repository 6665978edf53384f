//! The environment as a configuration source: `LOGINWITH_SECTION__KEY` variables and the seed's
//! `NAME_CLIENT_ID` / `NAME_CLIENT_SECRET`, always read as strings.

use figment::value::{Dict, Value};
use figment::Figment;

/// Provider names whose seed-style variables (`GOOGLE_CLIENT_ID` ...) are read even when the file
/// does not mention them.
pub(super) const ENV_ENABLED_PRESETS: [&str; 2] = ["google", "github"];

/// The names of `[providers.*]` tables, so that `NAME_CLIENT_ID` works for any of them.
pub(super) fn provider_names_in(figment: &Figment) -> Vec<String> {
    figment
        .find_value("providers")
        .ok()
        .and_then(|v| v.into_dict())
        .map(|d| d.into_keys().collect())
        .unwrap_or_default()
}

/// `GOOGLE_CLIENT_ID` → `providers.google.client_id`, as the seed's Flask app read them.
pub(super) fn seed_env_vars(name: &str) -> EnvStrings {
    let prefix = name.to_uppercase().replace('-', "_");
    EnvStrings {
        entries: [("CLIENT_ID", "client_id"), ("CLIENT_SECRET", "client_secret")]
            .into_iter()
            .filter_map(|(var, key)| {
                let var = format!("{prefix}_{var}");
                std::env::var(&var).ok().map(|v| (var, format!("providers.{name}.{key}"), v))
            })
            .collect(),
    }
}

/// Environment variables as configuration values, always as *strings*.
///
/// figment's own `Env` provider parses values, so a client secret `0123` would become the number
/// 123 and lose its zero; secrets and ids must arrive exactly as written.
pub(super) struct EnvStrings {
    /// (variable, dotted key, value)
    entries: Vec<(String, String, String)>,
}

impl EnvStrings {
    /// `LOGINWITH_SECTION__KEY` → `section.key`, except the `ignored` suffixes and variables
    /// without a section.
    pub(super) fn prefixed(prefix: &str, ignored: &[&str]) -> Self {
        Self::from_vars(std::env::vars(), prefix, ignored)
    }

    /// [`EnvStrings::prefixed`] over the given variables rather than the process's own.
    pub(super) fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
        prefix: &str,
        ignored: &[&str],
    ) -> Self {
        let entries = vars
            .into_iter()
            .filter_map(|(var, value)| {
                let rest = var.strip_prefix(prefix)?;
                // Every configuration key is SECTION__KEY; single words (LOGINWITH_CONFIG,
                // LOGINWITH_LOG, test switches) belong to other tools.
                if ignored.contains(&rest) || !rest.contains("__") {
                    return None;
                }
                let key = rest.to_lowercase().replace("__", ".");
                Some((var, key, value))
            })
            .collect();
        Self { entries }
    }
}

impl figment::Provider for EnvStrings {
    fn metadata(&self) -> figment::Metadata {
        let names: Vec<&str> = self.entries.iter().map(|(var, _, _)| var.as_str()).collect();
        figment::Metadata::named(format!("environment ({})", names.join(", ")))
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (_, key, value) in &self.entries {
            if let Some(nested) = figment::util::nest(key, Value::from(value.clone())).into_dict() {
                dict = merge_dicts(dict, nested);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

fn merge_dicts(mut base: Dict, other: Dict) -> Dict {
    for (key, value) in other {
        let merged = match (base.remove(&key), value) {
            (Some(Value::Dict(_, a)), Value::Dict(tag, b)) => Value::Dict(tag, merge_dicts(a, b)),
            (_, v) => v,
        };
        base.insert(key, merged);
    }
    base
}

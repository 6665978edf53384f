//! Property 7: configuration files, through `Config::from_toml` (no server).

use super::generators::*;
use super::harness::*;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

/// The example configuration, every key explained (mostly commented out).
const EXAMPLE: &str = include_str!("../../../loginwith.example.toml");

/// Marks secret values in generated configurations; no error message may repeat one.
const SECRET_MARK: &str = "S3CR3T";

/// Section names the configuration knows, and near misses.
const SECTIONS: &[&str] = &[
    "server",
    "database",
    "http",
    "limits",
    "log",
    "access",
    "providers",
    "providers.dev",
    "providers.google",
    "providers.github",
    "providers.microsoft",
    "providers.gitlab",
    "providers.corp",
    "providers.corp.userinfo",
    "providers.sso",
    "providers.Bad-Name",
    "providers.\"a b\"",
    "providers.x.y.z",
    "Server",
];

/// Every key the configuration knows, as the configuration itself lists them.
fn config_keys() -> Vec<&'static str> {
    loginwith::config::KNOWN_KEYS.iter().flat_map(|(_, keys)| keys.iter().copied()).collect()
}

/// Strings that are, or almost are, what some key expects.
const TEXT_VALUES: &[&str] = &[
    "dev",
    "google",
    "github",
    "microsoft",
    "gitlab",
    "client_secret_post",
    "client_secret_basic",
    "client_secret_jwt",
    "private_key_jwt",
    "form_post",
    "query",
    "common",
    "consumers",
    "organizations",
    "127.0.0.1:0",
    "[::1]:0",
    "0.0.0.0:80",
    "localhost:5000",
    "http://127.0.0.1:1/x",
    "https://idp.example",
    "https://idp.example/?q#f",
    "http://idp.example",
    "ftp://x",
    "https://",
    "sqlite://x.db",
    "sqlite:",
    "postgres://u@h/d",
    "mysql://x",
    "/email",
    "email",
    "~2",
    "/a~0b~1c",
    "openid email",
    "/welcome",
    "//evil.example",
    "alice@example.com",
    "example.com",
    ".example.com",
    "example.com, corp.example",
    "a\"b",
    "",
    " ",
    "true",
    "0123",
    "99999999999999999999",
];

/// A TOML value, including ones out of every key's range.
#[derive(Debug, Clone)]
enum TomlValue {
    Str(String),
    Int(i64),
    /// An integer literal beyond i64, which TOML itself refuses.
    BigInt(String),
    Float(f64),
    SpecialFloat(&'static str),
    Bool(bool),
    Date(&'static str),
    Array(Vec<TomlValue>),
    Table(Vec<(String, TomlValue)>),
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_key(k: &str) -> String {
    if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        k.to_owned()
    } else {
        toml_string(k)
    }
}

impl TomlValue {
    fn render(&self) -> String {
        match self {
            TomlValue::Str(s) => toml_string(s),
            TomlValue::Int(i) => i.to_string(),
            TomlValue::BigInt(s) => s.clone(),
            TomlValue::Float(f) => format!("{f:?}"),
            TomlValue::SpecialFloat(s) => (*s).to_owned(),
            TomlValue::Bool(b) => b.to_string(),
            TomlValue::Date(d) => (*d).to_owned(),
            TomlValue::Array(items) => {
                format!("[{}]", items.iter().map(TomlValue::render).collect::<Vec<_>>().join(", "))
            }
            TomlValue::Table(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{} = {}", toml_key(k), v.render()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Section names the configuration knows, near misses and junk.
fn toml_section() -> BoxedStrategy<String> {
    prop_oneof![
        4 => one_of(SECTIONS).prop_map(str::to_owned),
        1 => junk_text().prop_map(|s| toml_string(&s)),
    ]
    .boxed()
}

/// Keys the configuration knows, and junk.
fn config_key() -> BoxedStrategy<String> {
    prop_oneof![
        5 => select(config_keys()).prop_map(str::to_owned),
        1 => junk_text(),
    ]
    .boxed()
}

fn toml_value() -> BoxedStrategy<TomlValue> {
    let text = prop_oneof![
        3 => one_of(TEXT_VALUES).prop_map(str::to_owned),
        2 => junk_text(),
    ];
    let leaf = prop_oneof![
        4 => text.prop_map(TomlValue::Str),
        2 => prop_oneof![
            one_of(&[0i64, -1, 1, 1023, 1024, 3600, 3601, 60_000, 120_001, 67_108_865, i64::MAX, i64::MIN]),
            any::<i64>(),
        ].prop_map(TomlValue::Int),
        1 => one_of(&["99999999999999999999", "-99999999999999999999", "0x7FFFFFFFFFFFFFFFFF", "1_000", "+5"])
            .prop_map(|s| TomlValue::BigInt(s.to_owned())),
        1 => one_of(&[0.5, -0.0, 1e300, 3600.0, 1.0e-300]).prop_map(TomlValue::Float),
        1 => one_of(&["inf", "-inf", "nan"]).prop_map(TomlValue::SpecialFloat),
        1 => any::<bool>().prop_map(TomlValue::Bool),
        1 => one_of(&["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00"]).prop_map(TomlValue::Date),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(TomlValue::Array),
            prop::collection::vec((config_key(), inner), 0..4).prop_map(TomlValue::Table),
        ]
    })
    .boxed()
}

/// One edit of the example configuration (lines chosen modulo their count).
#[derive(Debug, Clone)]
enum ExampleEdit {
    /// A commented-out setting or table header (`# key = ...`, `# [table]`) switched on.
    Uncomment {
        setting: usize,
    },
    DeleteLine {
        line: usize,
    },
    DuplicateLine {
        line: usize,
    },
    /// The value of an active `key = value` line replaced.
    ReplaceValue {
        setting: usize,
        value: TomlValue,
    },
    InsertLine {
        line: usize,
        text: String,
    },
    Bytes(ByteEdit),
}

fn example_edit() -> impl Strategy<Value = ExampleEdit> {
    prop_oneof![
        6 => any::<usize>().prop_map(|setting| ExampleEdit::Uncomment { setting }),
        1 => any::<usize>().prop_map(|line| ExampleEdit::DeleteLine { line }),
        1 => any::<usize>().prop_map(|line| ExampleEdit::DuplicateLine { line }),
        3 => (any::<usize>(), toml_value())
            .prop_map(|(setting, value)| ExampleEdit::ReplaceValue { setting, value }),
        1 => (any::<usize>(), prop_oneof![
            (config_key(), toml_value()).prop_map(|(k, v)| format!("{} = {}", toml_key(&k), v.render())),
            toml_section().prop_map(|s| format!("[{s}]")),
            junk_text(),
        ]).prop_map(|(line, text)| ExampleEdit::InsertLine { line, text }),
        1 => byte_edit().prop_map(ExampleEdit::Bytes),
    ]
}

impl ExampleEdit {
    fn apply(&self, text: &str) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let pick = |n: usize, i: usize| if n == 0 { None } else { Some(i % n) };
        let commented_settings: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                let body = l.trim_start_matches('#').trim_start();
                l.starts_with('#')
                    && (body.starts_with('[')
                        || body.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')))
            })
            .map(|(i, _)| i)
            .collect();
        let active_settings: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.starts_with('#') && l.contains(" = "))
            .map(|(i, _)| i)
            .collect();
        match self {
            ExampleEdit::Uncomment { setting } => {
                if let Some(i) = pick(commented_settings.len(), *setting).map(|i| commented_settings[i]) {
                    lines[i] = lines[i].trim_start_matches('#').trim_start().to_owned();
                }
            }
            ExampleEdit::DeleteLine { line } => {
                if let Some(i) = pick(lines.len(), *line) {
                    lines.remove(i);
                }
            }
            ExampleEdit::DuplicateLine { line } => {
                if let Some(i) = pick(lines.len(), *line) {
                    let copy = lines[i].clone();
                    lines.insert(i, copy);
                }
            }
            ExampleEdit::ReplaceValue { setting, value } => {
                if let Some(i) = pick(active_settings.len(), *setting).map(|i| active_settings[i]) {
                    let key = lines[i].split(" = ").next().unwrap_or_default().to_owned();
                    lines[i] = format!("{key} = {}", value.render());
                }
            }
            ExampleEdit::InsertLine { line, text } => {
                let i = pick(lines.len() + 1, *line).unwrap_or(0);
                lines.insert(i, text.clone());
            }
            ExampleEdit::Bytes(edit) => {
                let mut bytes = lines.join("\n").into_bytes();
                edit.apply(&mut bytes);
                return String::from_utf8_lossy(&bytes).into_owned();
            }
        }
        lines.join("\n")
    }
}

/// One line of a generated configuration broken: repeated (a duplicate key), cut short (an
/// unterminated string), or followed by junk.
#[derive(Debug, Clone)]
enum LineBreak {
    Repeat { line: usize },
    Cut { line: usize, keep: usize },
    Append { line: usize, junk: &'static str },
}

fn line_break() -> impl Strategy<Value = LineBreak> {
    prop_oneof![
        any::<usize>().prop_map(|line| LineBreak::Repeat { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(line, keep)| LineBreak::Cut { line, keep }),
        (any::<usize>(), one_of(&[" x", " = 1", "\"", " ]", " # ok", "\u{0}"]))
            .prop_map(|(line, junk)| LineBreak::Append { line, junk }),
    ]
}

impl LineBreak {
    fn apply(&self, text: &str) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.is_empty() {
            return text.to_owned();
        }
        let n = lines.len();
        match self {
            LineBreak::Repeat { line } => {
                let copy = lines[line % n].clone();
                lines.insert(line % n, copy);
            }
            LineBreak::Cut { line, keep } => {
                let l = &mut lines[line % n];
                *l = l.chars().take(keep % (l.chars().count() + 1)).collect();
            }
            LineBreak::Append { line, junk } => lines[line % n].push_str(junk),
        }
        lines.join("\n")
    }
}

/// A table: its header (none: top level) and its `key = value` lines.
type Table = (Option<String>, Vec<(String, TomlValue)>);

/// A configuration text.
#[derive(Debug, Clone)]
enum ConfigText {
    Random(String),
    /// TOML punctuation and words, in any order.
    Soup(Vec<&'static str>),
    /// Tables of keys and values (secrets marked), perhaps with one line broken.
    Tables(Vec<Table>, Option<LineBreak>),
    Example(Vec<ExampleEdit>),
}

fn config_text() -> impl Strategy<Value = ConfigText> {
    let soup_piece = one_of(&[
        "[",
        "]",
        "[[",
        "]]",
        "=",
        "\"",
        "'",
        "\"\"\"",
        ".",
        "\n",
        " ",
        "#",
        "{",
        "}",
        ",",
        "server",
        "providers",
        "dev",
        "bind",
        "url",
        "1",
        "-1",
        "true",
        "\\",
        "\\u0000",
        "é",
        "1979-05-27",
    ]);
    prop_oneof![
        1 => any::<String>().prop_map(ConfigText::Random),
        1 => prop::collection::vec(soup_piece, 0..40).prop_map(ConfigText::Soup),
        3 => (
            prop::collection::vec(
                (prop::option::of(toml_section()), prop::collection::vec((config_key(), toml_value()), 0..6)),
                0..5,
            ),
            prop::option::of(line_break()),
        ).prop_map(|(tables, broken)| ConfigText::Tables(tables, broken)),
        4 => prop::collection::vec(example_edit(), 1..6).prop_map(ConfigText::Example),
    ]
}

impl ConfigText {
    fn render(&self) -> String {
        match self {
            ConfigText::Random(s) => s.clone(),
            ConfigText::Soup(pieces) => pieces.concat(),
            ConfigText::Tables(tables, broken) => {
                let mut text = String::new();
                for (section, entries) in tables {
                    if let Some(section) = section {
                        text.push_str(&format!("[{section}]\n"));
                    }
                    for (key, value) in entries {
                        let value = match value {
                            TomlValue::Str(s) if key == "secret_key" || key == "client_secret" => {
                                TomlValue::Str(format!("{SECRET_MARK}{s}"))
                            }
                            other => other.clone(),
                        };
                        text.push_str(&format!("{} = {}\n", toml_key(key), value.render()));
                    }
                }
                match broken {
                    Some(broken) => broken.apply(&text),
                    None => text,
                }
            }
            ConfigText::Example(edits) => {
                // The example's secrets are marked too, so that an edit breaking their lines is seen.
                let marked = EXAMPLE
                    .replace("secret_key = \"", &format!("secret_key = \"{SECRET_MARK}"))
                    .replace("client_secret = \"", &format!("client_secret = \"{SECRET_MARK}"));
                edits.iter().fold(marked, |text, edit| edit.apply(&text))
            }
        }
    }
}

#[test]
fn config_files_give_a_config_or_errors_naming_the_problem_never_a_panic() {
    // How many texts were accepted, to see that the generators reach valid configurations too.
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    check_property("config_files", 512, config_text(), |config| {
        let text = config.render();
        let result = std::panic::catch_unwind(|| loginwith::config::Config::from_toml(&text));
        let result =
            result.map_err(|_| TestCaseError::fail(format!("Config::from_toml panicked on:\n{text}")))?;
        if result.is_ok() {
            accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if let Err(errors) = result {
            prop_assert!(!errors.0.is_empty(), "an error without problems, for:\n{}", text);
            for problem in &errors.0 {
                // Our problems are `SOURCE: `key`: what`; figment's (TOML syntax, types) name the
                // source ("TOML source string") and usually a key.
                let names_something = problem.contains('`') || problem.contains("TOML source string");
                prop_assert!(
                    names_something,
                    "the problem {:?} names no key or source; config:\n{}",
                    problem,
                    text
                );
                prop_assert!(
                    !problem.contains(SECRET_MARK),
                    "the problem {:?} repeats a secret; config:\n{}",
                    problem,
                    text
                );
            }
        }
        Ok(())
    });
    eprintln!("property config_files: {} texts accepted as configurations", accepted.into_inner());
}

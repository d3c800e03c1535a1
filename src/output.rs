//! Data goes to stdout in the format `-o` asks for; everything else goes to stderr.

use std::io::Write;

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Row, Table};
use serde::Serialize;

/// `-o`: what a command prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
    /// `NAME=value` lines (`env` only).
    Dotenv,
    /// `export NAME=value` lines (`env` only).
    Shell,
}

impl OutputFormat {
    /// The formats only `env` prints.
    pub fn is_env_only(self) -> bool {
        matches!(self, OutputFormat::Dotenv | OutputFormat::Shell)
    }
}

use crate::error::{Error, Result};

/// Serializes `value` as JSON or YAML, or returns `None` for table output so
/// the caller renders its own table.
pub(crate) fn structured<T: Serialize>(format: OutputFormat, value: &T) -> Result<Option<String>> {
    match format {
        OutputFormat::Table => Ok(None),
        OutputFormat::Dotenv | OutputFormat::Shell => Err(env_only(format)),
        OutputFormat::Json => serde_json::to_string_pretty(value)
            .map(|text| Some(text + "\n"))
            .map_err(|err| Error::Other(format!("cannot encode JSON: {err}"))),
        OutputFormat::Yaml => serde_saphyr::to_string(value)
            .map(Some)
            .map_err(|err| Error::Other(format!("cannot encode YAML: {err}"))),
    }
}

/// Prints `value` on stdout as `-o` asks: JSON, YAML, or for `table` what
/// `table` renders of it.
pub(crate) fn emit<T: Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce(&T) -> String,
) -> Result<()> {
    match structured(format, value)? {
        Some(text) => print(text),
        None => print(table(value)),
    }
}

/// `-o dotenv|shell` given to a command other than `env`, in kubectl's words.
pub(crate) fn env_only(format: OutputFormat) -> Error {
    let name = match format {
        OutputFormat::Shell => "shell",
        _ => "dotenv",
    };
    Error::Usage(format!(
        "unable to match a printer suitable for the output format \"{name}\": it is only for `kubectl devenv env`; allowed formats are: table, json, yaml"
    ))
}

/// A borderless table with upper-case headers, like `kubectl get`.
pub(crate) fn table(headers: impl Into<Row>) -> Table {
    let mut table = Table::new();
    table
        .load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers);
    // kubectl separates columns by three spaces and pads nothing on the left.
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
    }
    table
}

/// Prints a table without the trailing spaces comfy-table pads the last column with.
pub(crate) fn print_table(table: &Table) -> Result<()> {
    print(table_text(table))
}

/// Writes data to stdout, the one way the commands print (`println!` would
/// panic on a closed pipe). A reader that stopped reading (`| head -1`) ends
/// the program quietly; see [`stdout_failed`].
pub(crate) fn print(data: impl AsRef<[u8]>) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(data.as_ref())
        .and_then(|()| stdout.flush())
        .map_err(stdout_failed)
}

/// The error for a failed write to stdout; a closed pipe does not return but
/// ends the program ([`closed_pipe`]).
pub(crate) fn stdout_failed(err: std::io::Error) -> Error {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        closed_pipe();
    }
    Error::Other(format!("cannot write to stdout: {err}"))
}

/// Ends the program because whoever read stdout has gone, as kubectl ends:
/// its Go runtime dies of SIGPIPE on Unix (the shell sees 141) and exits
/// quietly elsewhere. No `error:` line, no panic.
pub(crate) fn closed_pipe() -> ! {
    #[cfg(unix)]
    // SAFETY: Rust ignores SIGPIPE; restoring the default disposition and
    // raising it ends the process here, as a write would in a C program.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(0)
}

/// A table's lines without the trailing spaces comfy-table pads the last column with.
pub(crate) fn table_text(table: &Table) -> String {
    table
        .lines()
        .map(|line| line.trim_end().to_owned() + "\n")
        .collect()
}

/// kubectl's age column: 45s, 3m, 5h, 2d.
pub(crate) fn age(since: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    let Some(since) = since else {
        return "<unknown>".to_owned();
    };
    let secs = k8s_openapi::jiff::Timestamp::now()
        .duration_since(since.0)
        .as_secs()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

//! Progress on stderr, drawn only when stderr is a terminal: in CI logs and
//! pipes a spinner's redraws would be noise, and stdout stays data only.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

const TICK: Duration = Duration::from_millis(120);

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A spinner with a message, for work of unknown length.
pub(crate) fn spinner(message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target());
    bar.set_style(style("{spinner} {msg}"));
    bar.set_message(message.into());
    bar.enable_steady_tick(TICK);
    bar
}

/// A bar over `total` bytes, with rate and elapsed time.
pub(crate) fn bytes(total: u64, message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), target());
    bar.set_style(
        style("{spinner} {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {elapsed}")
            .progress_chars("=> "),
    );
    bar.set_message(message.into());
    bar.enable_steady_tick(TICK);
    bar
}

/// One line per item (`prefix` padded to `width`), each with its own counts.
pub(crate) fn lines(prefixes: &[String]) -> (MultiProgress, Vec<ProgressBar>) {
    let multi = MultiProgress::with_draw_target(target());
    let width = prefixes.iter().map(String::len).max().unwrap_or(0);
    let line = style(&format!(
        "{{spinner}} {{prefix:{width}}} {{pos}}/{{len}} {{msg}}"
    ));
    let bars = prefixes
        .iter()
        .map(|prefix| {
            let bar = multi.add(ProgressBar::new(1).with_style(line.clone()));
            bar.set_prefix(prefix.clone());
            bar.set_message("waiting");
            bar.enable_steady_tick(TICK);
            bar
        })
        .collect();
    (multi, bars)
}

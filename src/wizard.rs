//! The interactive part of `up`: questions on stderr (dialoguer), a summary,
//! a confirmation, then `devenv.yaml` written so the next run replays it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, MultiSelect, Select};

use crate::arch::Arch;
use crate::catalog;
use crate::error::{Error, Result};
use crate::spec::{self, Draft, Spec};

/// Components ticked when the wizard starts: the research note's stack.
const PRESELECTED: [&str; 3] = ["php", "mysql", "redis"];

fn prompt_error(err: dialoguer::Error) -> Error {
    Error::Other(format!("cannot read the answer: {err}"))
}

/// Asks for the stack, shows it, asks to confirm, and writes `path`.
/// Flags already given (`--name`, `--arch`, ...) become the defaults.
pub(crate) fn run(defaults: &Draft, path: &Path) -> Result<Spec> {
    let theme = ColorfulTheme::default();
    eprintln!(
        "No {} here: let's describe the stack (Ctrl-C to quit).",
        path.display()
    );
    let name: String = Input::with_theme(&theme)
        .with_prompt("Stack name")
        .default(defaults.name.clone())
        .validate_with(
            |v: &String| match spec::name_problem(v, spec::MAX_NAME_LEN) {
                None => Ok(()),
                Some(problem) => Err(problem),
            },
        )
        .interact_text()
        .map_err(prompt_error)?;

    let entries = catalog::entries();
    let labels: Vec<String> = entries
        .iter()
        .map(|e| format!("{:<10} {}", e.kind, e.description))
        .collect();
    let preselected: Vec<bool> = entries
        .iter()
        .map(|e| PRESELECTED.contains(&e.kind.as_str()))
        .collect();
    let chosen = loop {
        let chosen = MultiSelect::with_theme(&theme)
            .with_prompt("Test stack components (space toggles, enter accepts)")
            .items(&labels)
            .defaults(&preselected)
            .interact()
            .map_err(prompt_error)?;
        if !chosen.is_empty() {
            break chosen;
        }
        eprintln!("Pick at least one component.");
    };
    let mut components = Vec::new();
    for index in chosen {
        let entry = &entries[index];
        let version = pick_version(&theme, entry, &format!("{} version", entry.kind))?;
        components.push((entry.kind.clone(), Some(version)));
    }
    let php = catalog::php();
    let dev_version = pick_version(&theme, php, "PHP version of the dev pod")?;
    let dev_image = pick_dev_image(&theme, php, &dev_version)?;

    let dev_namespace = ask_namespace(&theme, "Dev namespace", &defaults.dev_namespace, None)?;
    let test_namespace = ask_namespace(
        &theme,
        "Test namespace",
        &defaults.test_namespace,
        Some(&dev_namespace),
    )?;
    let code_path: String = Input::with_theme(&theme)
        .with_prompt(
            "Code directory to mount into the dev pod (absolute, on the node; empty for none)",
        )
        .default(
            defaults
                .code_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        )
        .allow_empty(true)
        .validate_with(|v: &String| {
            if v.is_empty() || Path::new(v).is_absolute() {
                Ok(())
            } else {
                Err("use an absolute path, or leave it empty")
            }
        })
        .interact_text()
        .map_err(prompt_error)?;
    let arch_choices = ["any (the scheduler decides)", "amd64", "arm64"];
    let arch_default = match defaults.target_arch.as_ref().map(Arch::architecture) {
        Some("amd64") => 1,
        Some("arm64") => 2,
        _ => 0,
    };
    let target_arch = match Select::with_theme(&theme)
        .with_prompt("Target CPU architecture")
        .items(arch_choices)
        .default(arch_default)
        .interact()
        .map_err(prompt_error)?
    {
        1 => Some(Arch::amd64()),
        2 => Some(Arch::arm64()),
        _ => None,
    };

    let spec = Draft {
        name,
        dev_namespace,
        test_namespace,
        target_arch,
        code_path: (!code_path.is_empty()).then(|| PathBuf::from(code_path)),
        dev_version: Some(dev_version),
        dev_image,
        components,
    }
    .resolve()?;
    eprintln!("\n{}", summary(&spec));
    if !confirm(&format!("Write {} and create this stack?", path.display()))? {
        return Err(Error::Other(
            "aborted: nothing was written or applied".into(),
        ));
    }
    std::fs::write(path, spec.to_yaml())
        .map_err(|err| Error::Other(format!("cannot write {}: {err}", path.display())))?;
    eprintln!("Wrote {}; `kubectl devenv up` replays it.", path.display());
    Ok(spec)
}

fn pick_version(theme: &ColorfulTheme, entry: &catalog::Entry, prompt: &str) -> Result<String> {
    if entry.versions.len() == 1 {
        return Ok(entry.versions[0].clone());
    }
    let default = entry
        .versions
        .iter()
        .position(|v| *v == entry.default_version)
        .unwrap_or(0);
    let index = Select::with_theme(theme)
        .with_prompt(prompt)
        .items(&entry.versions)
        .default(default)
        .interact()
        .map_err(prompt_error)?;
    Ok(entry.versions[index].clone())
}

/// "With tools" (the default dev image) or the bare official image; `None`
/// keeps the default, so devenv.yaml names no image.
fn pick_dev_image(
    theme: &ColorfulTheme,
    php: &catalog::Entry,
    version: &str,
) -> Result<Option<String>> {
    let Some(with_tools) = php.dev_image_for(version) else {
        return Ok(None);
    };
    let bare = php.image_for(version);
    let choices = [
        format!(
            "with tools: {with_tools} (database drivers, composer, git, clients, nginx on HTTP)"
        ),
        format!("the bare official image: {bare} (PHP-FPM only)"),
    ];
    let index = Select::with_theme(theme)
        .with_prompt("Dev pod image")
        .items(&choices)
        .default(0)
        .interact()
        .map_err(prompt_error)?;
    Ok((index == 1).then_some(bare))
}

fn ask_namespace(
    theme: &ColorfulTheme,
    prompt: &str,
    default: &str,
    differs_from: Option<&str>,
) -> Result<String> {
    let other = differs_from.map(str::to_owned);
    Input::with_theme(theme)
        .with_prompt(prompt)
        .default(default.to_owned())
        .validate_with(move |v: &String| {
            if other.as_deref() == Some(v.as_str()) {
                return Err("the dev and test namespaces must differ".to_owned());
            }
            spec::name_problem(v, 63).map_or(Ok(()), Err)
        })
        .interact_text()
        .map_err(prompt_error)
}

/// Whether prompts can be shown: both the keyboard and the prompt's screen are terminals.
pub(crate) fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The one rule for commands that change the cluster (`--yes` skips it):
/// ask on a terminal, and refuse with a usage error where there is none to
/// ask on, rather than guess. `question` runs only when it will be asked.
pub(crate) fn confirm_or_refuse(doing: &str, question: impl FnOnce() -> String) -> Result<bool> {
    if !interactive() {
        return Err(Error::Usage(format!(
            "refusing to {doing} without confirmation: there is no terminal to ask; pass --yes"
        )));
    }
    confirm(&question())
}

/// A yes/no question on stderr, defaulting to yes.
pub(crate) fn confirm(prompt: &str) -> Result<bool> {
    Confirm::with_theme(&ColorfulTheme::default())
        .with_prompt(prompt)
        .default(true)
        .interact()
        .map_err(prompt_error)
}

/// What will be created, for the confirmation prompt.
pub(crate) fn summary(spec: &Spec) -> String {
    let mut out = format!(
        "Stack \"{}\": dev pod in namespace \"{}\", test stack in \"{}\"{}\n",
        spec.name,
        spec.dev_namespace,
        spec.test_namespace,
        spec.target_arch
            .as_ref()
            .map(|a| format!(", on {a} nodes"))
            .unwrap_or_default()
    );
    out += &format!("  {:<10} {}", spec::DEV_COMPONENT, spec.dev.image);
    if let Some(code) = &spec.dev.code_path {
        out += &format!(" (code from {})", code.display());
    }
    out += "\n";
    for c in &spec.components {
        out += &format!("  {:<10} {}  port {}", c.name, c.image, c.port);
        if let Some(storage) = &c.storage {
            out += &format!("  data {}", storage.size);
        }
        out += "\n";
    }
    out
}

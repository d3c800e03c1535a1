//! Shell completion, both ways a user can type the plugin's name:
//!
//! - `kubectl-devenv <TAB>`: static scripts from `kubectl devenv completion bash|zsh|fish|powershell`
//!   (clap_complete), committed under `completions/`.
//! - `kubectl devenv <TAB>`: kubectl (1.26+) runs `kubectl_complete-devenv` from `$PATH` with the
//!   words after `kubectl devenv`. That shim (`kubectl devenv completion kubectl-shim`) runs
//!   `kubectl-devenv __complete WORD...`, which main answers before clap parses anything (so no
//!   help or script lists it), with clap's completion engine plus live values: component and
//!   stack names, contexts, clusters, users and namespaces.
//!
//! Everything is generated from [`Cli::command`], so new subcommands and flags are picked up
//! without changes here. Live values come from the completers below, which each argument
//! that names a live thing attaches itself (`#[arg(add = completion::stacks())]`).
//!
//! The hook runs before main starts any runtime: a completer that needs the cluster connects
//! once per completion, on a current-thread runtime of its own.

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, ValueEnum};
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::{Shell, generate};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::ResourceExt;
use kube::api::ListParams;

use crate::cli::{Cli, GlobalArgs};
use crate::cluster::{Cluster, Scope, load_kubeconfig};
use crate::error::{Error, Result};
use crate::{catalog, labels, output, spec};

#[derive(Debug, Args)]
#[command(after_long_help = SETUP_HELP)]
pub struct CompletionArgs {
    /// What to print: a shell's completion script, the kubectl plugin-completion shim, or the man page
    #[arg(value_enum)]
    pub target: Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    Bash,
    Zsh,
    Fish,
    Powershell,
    /// The `kubectl_complete-devenv` executable that kubectl runs to complete `kubectl devenv ...`
    KubectlShim,
    /// The man page (roff), for `man -l` or a man directory
    Man,
}

const SETUP_HELP: &str = "\
Completing `kubectl devenv ...` (kubectl 1.26+, with kubectl's own completion loaded), with live
contexts, namespaces, stacks and components:
  kubectl devenv completion kubectl-shim > ~/.krew/bin/kubectl_complete-devenv
  chmod +x ~/.krew/bin/kubectl_complete-devenv
  (any directory on PATH works; krew cannot install this file itself)

Completing the `kubectl-devenv` executable (subcommands and flags only):
  bash (~/.bashrc):  source <(kubectl devenv completion bash)
  zsh (~/.zshrc, after compinit):  source <(kubectl devenv completion zsh)
  fish:  kubectl devenv completion fish > ~/.config/fish/completions/kubectl-devenv.fish
  PowerShell ($PROFILE):  kubectl devenv completion powershell | Out-String | Invoke-Expression";

/// Prints a completion script, the shim or the man page.
pub(crate) fn run(args: &CompletionArgs) -> Result<()> {
    output::print(render(args.target)?)
}

/// The bytes `kubectl devenv completion <target>` prints.
pub(crate) fn render(target: Target) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let shell = match target {
        Target::Bash => Shell::Bash,
        Target::Zsh => Shell::Zsh,
        Target::Fish => Shell::Fish,
        Target::Powershell => Shell::PowerShell,
        Target::KubectlShim => return Ok(KUBECTL_SHIM.as_bytes().to_vec()),
        Target::Man => {
            return man_page()
                .map_err(|err| Error::Other(format!("cannot render the man page: {err}")));
        }
    };
    // The scripts complete the executable's own name; `kubectl devenv` goes through the shim.
    if shell == Shell::Bash {
        return Ok(bash_script());
    }
    generate(shell, &mut Cli::command(), BINARY, &mut out);
    Ok(out)
}

/// clap_complete's bash script spells states differently in its dispatch loop and its case
/// arms when the name has a hyphen, so nothing after a subcommand completes (clap-rs/clap#6421).
/// Generating under a hyphen-free name and registering it for the real one avoids that.
fn bash_script() -> Vec<u8> {
    const INTERNAL: &str = "kubectl_devenv";
    let mut out = Vec::new();
    generate(Shell::Bash, &mut Cli::command(), INTERNAL, &mut out);
    String::from_utf8_lossy(&out)
        .replace(&format!(" {INTERNAL}\n"), &format!(" {BINARY}\n"))
        .into_bytes()
}

/// One page for the whole plugin. clap_mangen's own subcommand section points at a page per
/// subcommand (`kubectl-devenv-up(1)`), which a single page would leave dangling.
fn man_page() -> std::io::Result<Vec<u8>> {
    let cli = Cli::command();
    let man = clap_mangen::Man::new(cli.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    writeln!(out, ".SH SUBCOMMANDS")?;
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        writeln!(out, ".TP\n\\fBkubectl devenv {name}\\fR")?;
        if let Some(about) = sub.get_about() {
            writeln!(out, "{}", roff_text(&about.to_string()))?;
        }
        writeln!(
            out,
            ".br\nOptions: \\fBkubectl devenv {name} \\-\\-help\\fR"
        )?;
    }
    writeln!(out, ".SH SHELL COMPLETION")?;
    for line in SETUP_HELP.lines() {
        match line.strip_prefix("  ") {
            Some(example) => writeln!(out, ".RS\n.nf\n{}\n.fi\n.RE", roff_text(example))?,
            None if line.is_empty() => writeln!(out, ".PP")?,
            None => writeln!(out, "{}", roff_text(line))?,
        }
    }
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// Text as roff prints it literally: backslashes and hyphens escaped, and no line
/// starting with a control character.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

const BINARY: &str = "kubectl-devenv";

const KUBECTL_SHIM: &str = r#"#!/bin/sh
# kubectl (1.26+) runs this file, found on PATH as kubectl_complete-devenv, to complete
# `kubectl devenv ...`: it passes the words after `kubectl devenv` (the last one being
# completed) and reads one candidate per line, then a `:<directive>` line.
# krew cannot install it (kubernetes-sigs/krew#812): put it next to kubectl-devenv yourself.
exec kubectl-devenv __complete "$@"
"#;

/// cobra's ShellCompDirectiveNoSpace: the candidate is not finished (a directory).
const DIRECTIVE_NO_SPACE: u8 = 2;
/// cobra's ShellCompDirectiveNoFileComp: never fall back to file names.
const DIRECTIVE_NO_FILE_COMP: u8 = 4;

/// How long completion may wait for the cluster; a slow cluster gives no candidates, not a hang.
const CLUSTER_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The first argument that makes the binary answer kubectl's plugin-completion call.
pub(crate) const KUBECTL_COMPLETION_ENTRY: &str = "__complete";

/// Answers kubectl's plugin-completion call when the arguments are
/// `__complete WORD...`, and returns whether it did. Never writes to stderr,
/// which kubectl passes straight to the terminal in the middle of the user's
/// command line; any failure just means no candidates. Called before any runtime
/// runs on this thread, since a cluster lookup blocks on a runtime of its own.
pub fn answer_kubectl_completion(mut argv: impl Iterator<Item = OsString>) -> bool {
    if argv.nth(1).as_deref() != Some(OsStr::new(KUBECTL_COMPLETION_ENTRY)) {
        return false;
    }
    let words: Vec<OsString> = argv.collect();
    let cwd = std::env::current_dir().ok();
    let candidates = complete_words(&words, cwd.as_deref());
    // A closed pipe (the shell gave up waiting) is not worth reporting.
    let _ = std::io::stdout().write_all(kubectl_protocol(&candidates).as_bytes());
    true
}

/// One completion answer: the value, and a one-line description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub value: String,
    pub help: Option<String>,
}

/// Completes the last of `words` (the words after `kubectl devenv`).
pub(crate) fn complete_words(words: &[OsString], cwd: Option<&Path>) -> Vec<Candidate> {
    complete_in(Cli::command(), words, cwd)
}

/// Completes against `cli`, which must have the [`GlobalArgs`].
fn complete_in(mut cli: clap::Command, words: &[OsString], cwd: Option<&Path>) -> Vec<Candidate> {
    let Some((current, before)) = words.split_last() else {
        return complete_in(cli, &[OsString::new()], cwd);
    };
    let line = LineContext::parse(&cli, before, cwd);
    let mut argv = vec![OsString::from(BINARY)];
    argv.extend(before.iter().cloned());
    argv.push(current.clone());
    let index = argv.len() - 1;
    let found = with_line(line, || {
        clap_complete::engine::complete(&mut cli, argv, index, cwd).unwrap_or_default()
    });
    let candidates = found
        .into_iter()
        .filter(|c| !c.is_hide_set())
        .map(|c| Candidate {
            value: c.get_value().to_string_lossy().into_owned(),
            help: c.get_help().map(|h| first_line(&h.to_string())),
        })
        .collect();
    prefer_values_over_flags(candidates, current)
}

/// kubectl's habit: flags are offered only once the user has typed a `-`.
fn prefer_values_over_flags(candidates: Vec<Candidate>, current: &OsStr) -> Vec<Candidate> {
    if current.to_string_lossy().starts_with('-') {
        return candidates;
    }
    let (flags, values): (Vec<_>, Vec<_>) = candidates
        .into_iter()
        .partition(|c| c.value.starts_with('-'));
    if values.is_empty() { flags } else { values }
}

/// kubectl's plugin-completion protocol: `value\thelp` lines, then `:<cobra directive>`.
pub(crate) fn kubectl_protocol(candidates: &[Candidate]) -> String {
    let mut out = String::new();
    for candidate in candidates {
        out.push_str(&candidate.value);
        if let Some(help) = &candidate.help {
            out.push('\t');
            out.push_str(help);
        }
        out.push('\n');
    }
    let mut directive = DIRECTIVE_NO_FILE_COMP;
    if candidates
        .iter()
        .any(|c| c.value.ends_with(std::path::MAIN_SEPARATOR))
    {
        directive |= DIRECTIVE_NO_SPACE;
    }
    out.push_str(&format!(":{directive}\n"));
    out
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

thread_local! {
    /// The line being completed, for the completers attached to the arguments:
    /// clap_complete calls them without arguments.
    static LINE: RefCell<Option<LineContext>> = const { RefCell::new(None) };
}

/// Runs `complete` with `line` as the line being completed.
fn with_line<T>(line: LineContext, complete: impl FnOnce() -> T) -> T {
    LINE.set(Some(line));
    let found = complete();
    let connected = LINE
        .take()
        .and_then(|line| line.cluster.into_inner().flatten());
    if let Some(connected) = connected {
        // Don't wait for a credential plugin that is still running.
        connected.runtime.shutdown_background();
    }
    found
}

/// A completer that asks `lookup` about the line being completed.
fn live(lookup: fn(&LineContext) -> Vec<CompletionCandidate>) -> ArgValueCandidates {
    ArgValueCandidates::new(move || {
        LINE.with_borrow(|line| line.as_ref().map(lookup).unwrap_or_default())
    })
}

/// `--context`: the kubeconfig's contexts, each with its cluster and namespace.
pub(crate) fn contexts() -> ArgValueCandidates {
    live(LineContext::contexts)
}

/// `--cluster`: the kubeconfig's clusters.
pub(crate) fn clusters() -> ArgValueCandidates {
    live(LineContext::clusters)
}

/// `--user`: the kubeconfig's users.
pub(crate) fn users() -> ArgValueCandidates {
    live(LineContext::users)
}

/// `-n`: the cluster's namespaces.
pub(crate) fn namespaces() -> ArgValueCandidates {
    live(LineContext::namespaces)
}

/// `--stack`: the stacks deployed in the cluster.
pub(crate) fn stacks() -> ArgValueCandidates {
    live(LineContext::stacks)
}

/// `forward mysql redis`, `credentials mysql`: components behind a Service.
pub(crate) fn components() -> ArgValueCandidates {
    live(LineContext::components)
}

/// `logs dev`, `shell`: components, and the dev pod.
pub(crate) fn components_or_dev_pod() -> ArgValueCandidates {
    live(LineContext::components_and_dev_pod)
}

/// `up --components mysql:8.4,redis`: kinds from the catalog.
pub(crate) fn catalog_kinds() -> ArgValueCandidates {
    ArgValueCandidates::new(catalog_kind_candidates)
}

/// What the words typed so far say about where to look: the kubeconfig selection and `-n`
/// for cluster lookups, `--stack` to narrow components, and the working directory for
/// `devenv.yaml`.
#[derive(Default)]
struct LineContext {
    global: Option<GlobalArgs>,
    stack: Option<String>,
    cwd: Option<PathBuf>,
    /// The cluster, connected by the first completer that needs it.
    cluster: OnceCell<Option<Connected>>,
}

/// A cluster connection on a runtime of its own, both alive until the completion ends.
struct Connected {
    cluster: Cluster,
    runtime: tokio::runtime::Runtime,
    /// When the cluster lookups of this completion give up.
    deadline: tokio::time::Instant,
}

impl LineContext {
    fn parse(cli: &clap::Command, words: &[OsString], cwd: Option<&Path>) -> Self {
        let argv = std::iter::once(OsString::from(BINARY)).chain(words.iter().cloned());
        // A half-typed line is rarely valid; take whatever clap can still read.
        let Ok(matches) = cli.clone().ignore_errors(true).try_get_matches_from(argv) else {
            return Self {
                cwd: cwd.map(Path::to_owned),
                ..Self::default()
            };
        };
        let mut stack = None;
        let mut level = Some(&matches);
        while let Some(current) = level {
            if let Ok(Some(value)) = current.try_get_one::<String>("stack") {
                stack = Some(value.clone());
            }
            level = current.subcommand().map(|(_, sub)| sub);
        }
        Self {
            global: GlobalArgs::from_arg_matches(&matches).ok(),
            stack,
            cwd: cwd.map(Path::to_owned),
            ..Self::default()
        }
    }

    fn kubeconfig(&self) -> Option<&Path> {
        self.global.as_ref()?.kubeconfig.as_deref()
    }

    fn contexts(&self) -> Vec<CompletionCandidate> {
        let Ok(config) = load_kubeconfig(self.kubeconfig()) else {
            return Vec::new();
        };
        config
            .contexts
            .iter()
            .map(|named| {
                let help = named.context.as_ref().map(|c| match &c.namespace {
                    Some(ns) => format!("cluster {}, namespace {ns}", c.cluster),
                    None => format!("cluster {}", c.cluster),
                });
                CompletionCandidate::new(&named.name).help(help.map(Into::into))
            })
            .collect()
    }

    fn clusters(&self) -> Vec<CompletionCandidate> {
        self.kubeconfig_names(|config| config.clusters.iter().map(|c| c.name.clone()).collect())
    }

    fn users(&self) -> Vec<CompletionCandidate> {
        self.kubeconfig_names(|config| config.auth_infos.iter().map(|u| u.name.clone()).collect())
    }

    /// Names picked from the kubeconfig; none when it cannot be read.
    fn kubeconfig_names(
        &self,
        names: impl FnOnce(&kube::config::Kubeconfig) -> Vec<String>,
    ) -> Vec<CompletionCandidate> {
        load_kubeconfig(self.kubeconfig())
            .map(|config| {
                names(&config)
                    .into_iter()
                    .map(CompletionCandidate::new)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn namespaces(&self) -> Vec<CompletionCandidate> {
        self.with_cluster(|cluster| async move {
            let api = cluster.api::<Namespace>(&Scope::All);
            let list = match cluster
                .call(
                    cluster.action::<Namespace>("list", &Scope::All),
                    api.list_metadata(&ListParams::default()),
                )
                .await
            {
                Ok(list) => list,
                // Users confined to namespaces still get the one their context names.
                Err(err) if err.is_forbidden() => {
                    return Ok(vec![CompletionCandidate::new(&cluster.namespace)]);
                }
                Err(err) => return Err(err),
            };
            Ok(list
                .items
                .iter()
                .map(|ns| CompletionCandidate::new(ns.name_any()))
                .collect())
        })
    }

    /// Components that run behind a Service (what `forward` can reach).
    fn components(&self) -> Vec<CompletionCandidate> {
        self.component_candidates(false)
    }

    /// Components plus the dev pod (what `logs` and `shell` can reach).
    fn components_and_dev_pod(&self) -> Vec<CompletionCandidate> {
        self.component_candidates(true)
    }

    /// From `./devenv.yaml` when there is one (no cluster round trip) and `--stack` names
    /// no other stack, else from the stacks deployed in the cluster.
    fn component_candidates(&self, with_dev_pod: bool) -> Vec<CompletionCandidate> {
        let dev_pod =
            || CompletionCandidate::new(spec::DEV_COMPONENT).help(Some("the dev pod".into()));
        let local = self.cwd.as_deref().and_then(spec_in);
        if let Some(spec) = local.filter(|s| self.stack.as_ref().is_none_or(|n| *n == s.name)) {
            let mut found: Vec<_> = spec
                .components
                .into_iter()
                .map(|c| CompletionCandidate::new(c.name).help(Some("in devenv.yaml".into())))
                .collect();
            found.extend(with_dev_pod.then(dev_pod));
            return found;
        }
        let mut found: Vec<_> = self
            .deployed()
            .into_iter()
            .map(|(component, where_)| {
                CompletionCandidate::new(component).help(Some(where_.into()))
            })
            .collect();
        // A dev pod that serves HTTP is deployed as a component too (its Service).
        let listed = found.iter().any(|c| c.get_value() == spec::DEV_COMPONENT);
        if with_dev_pod && !listed && self.dev_pod_deployed() {
            found.push(dev_pod());
        }
        found
    }

    fn stacks(&self) -> Vec<CompletionCandidate> {
        let mut stacks = BTreeMap::new();
        for service in self.managed_services().into_iter().filter(runs_pods) {
            if let Some(stack) = service.labels().get(labels::STACK) {
                stacks.insert(stack.clone(), service.namespace().unwrap_or_default());
            }
        }
        stacks
            .into_iter()
            .map(|(stack, ns)| {
                CompletionCandidate::new(stack).help(Some(format!("namespace {ns}").into()))
            })
            .collect()
    }

    /// Deployed component names, each with where it runs ("stack shop in namespace test").
    fn deployed(&self) -> BTreeMap<String, String> {
        let mut components = BTreeMap::new();
        for service in self.managed_services().into_iter().filter(runs_pods) {
            let labels = service.labels();
            if let Some(component) = labels.get(labels::COMPONENT) {
                let stack = labels.get(labels::STACK).map(String::as_str).unwrap_or("?");
                let ns = service.namespace().unwrap_or_default();
                components
                    .entry(component.clone())
                    .or_insert_with(|| format!("stack {stack} in namespace {ns}"));
            }
        }
        components
    }

    /// The Services kubectl-devenv manages (of `--stack` if typed).
    fn managed_services(&self) -> Vec<Service> {
        self.managed("", None)
    }

    /// Whether a dev pod of kubectl-devenv's (of `--stack` if typed) exists.
    fn dev_pod_deployed(&self) -> bool {
        let dev = format!(",{}={}", labels::COMPONENT, spec::DEV_COMPONENT);
        !self.managed::<Pod>(&dev, Some(1)).is_empty()
    }

    /// Managed objects matching `extra_selector` too: in `-n` if typed, else in every
    /// namespace the user may list, else in the context's namespace.
    fn managed<K>(&self, extra_selector: &str, limit: Option<u32>) -> Vec<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send,
    {
        let base = match &self.stack {
            Some(stack) => labels::stack_selector(stack),
            None => labels::managed_selector(),
        };
        let selector = format!("{base}{extra_selector}");
        self.with_cluster(|cluster| async move {
            let mut params = ListParams::default().labels(&selector);
            params.limit = limit;
            if cluster.scope() == Scope::All {
                match cluster.list_with(&Scope::All, &params).await {
                    Ok(found) => return Ok(found),
                    Err(err) if err.is_forbidden() => {}
                    Err(err) => return Err(err),
                }
            }
            cluster.list_with(&cluster.default_scope(), &params).await
        })
    }

    /// Runs one cluster lookup on the completion's connection, bounded with the other lookups
    /// by [`CLUSTER_LOOKUP_TIMEOUT`]; any failure means no candidates.
    fn with_cluster<'a, T, Fut>(&'a self, lookup: impl FnOnce(&'a Cluster) -> Fut) -> Vec<T>
    where
        Fut: Future<Output = Result<Vec<T>>>,
    {
        let Some(connected) = self.cluster.get_or_init(|| self.connect()) else {
            return Vec::new();
        };
        let found =
            async { tokio::time::timeout_at(connected.deadline, lookup(&connected.cluster)).await };
        match connected.runtime.block_on(found) {
            Ok(Ok(found)) => found,
            _ => Vec::new(),
        }
    }

    /// Connects with the kubeconfig selection typed so far, on a new current-thread runtime.
    fn connect(&self) -> Option<Connected> {
        let mut global = self.global.clone()?;
        if global.request_timeout.is_zero() || global.request_timeout > CLUSTER_LOOKUP_TIMEOUT {
            global.request_timeout = CLUSTER_LOOKUP_TIMEOUT;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let deadline = tokio::time::Instant::now() + CLUSTER_LOOKUP_TIMEOUT;
        let connect = async {
            tokio::time::timeout_at(deadline, Cluster::connect(&global.connection())).await
        };
        match runtime.block_on(connect) {
            Ok(Ok(cluster)) => Some(Connected {
                cluster,
                runtime,
                deadline,
            }),
            _ => {
                // Don't wait for a credential plugin that is still running.
                runtime.shutdown_background();
                None
            }
        }
    }
}

/// False for the dev namespace's ExternalName aliases, which carry a component's labels
/// but run nothing.
fn runs_pods(service: &Service) -> bool {
    let kind = service.spec.as_ref().and_then(|spec| spec.type_.as_deref());
    kind != Some("ExternalName")
}

/// The valid `devenv.yaml` in `dir`, if there is one.
fn spec_in(dir: &Path) -> Option<spec::Spec> {
    let path = dir.join(spec::DEFAULT_FILE);
    path.is_file().then(|| spec::load(&path).ok()).flatten()
}

/// Every catalog kind, alone (default version) and with each of its versions.
fn catalog_kind_candidates() -> Vec<CompletionCandidate> {
    catalog::entries()
        .iter()
        .flat_map(|entry| {
            let help = Some(entry.description.clone().into());
            let versions = entry
                .versions
                .iter()
                .map(move |v| format!("{}:{v}", entry.kind));
            std::iter::once(entry.kind.clone())
                .chain(versions)
                .map(move |value| CompletionCandidate::new(value).help(help.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn values(candidates: &[Candidate]) -> Vec<&str> {
        candidates.iter().map(|c| c.value.as_str()).collect()
    }

    #[test]
    fn protocol_ends_with_the_no_file_directive() {
        let candidates = vec![
            Candidate {
                value: "status".into(),
                help: Some("List things".into()),
            },
            Candidate {
                value: "version".into(),
                help: None,
            },
        ];
        assert_eq!(
            kubectl_protocol(&candidates),
            "status\tList things\nversion\n:4\n"
        );
        assert_eq!(kubectl_protocol(&[]), ":4\n");
    }

    #[test]
    fn directories_keep_the_cursor_on_the_word() {
        let dir = format!("conf{}", std::path::MAIN_SEPARATOR);
        let candidates = vec![Candidate {
            value: dir.clone(),
            help: None,
        }];
        assert_eq!(kubectl_protocol(&candidates), format!("{dir}\n:6\n"));
    }

    #[test]
    fn a_new_word_offers_subcommands_not_flags() {
        let found = complete_words(&words(&[""]), None);
        let found = values(&found);
        assert!(
            found.contains(&"status") && found.contains(&"version"),
            "{found:?}"
        );
        assert!(found.contains(&"completion"), "{found:?}");
        assert!(found.iter().all(|v| !v.starts_with('-')), "{found:?}");
    }

    #[test]
    fn a_dash_offers_the_kubectl_style_flags() {
        let found = complete_words(&words(&["status", "--c"]), None);
        assert_eq!(values(&found), ["--context", "--cluster"]);
    }

    #[test]
    fn enum_values_complete() {
        let found = complete_words(&words(&["status", "-o", "y"]), None);
        assert_eq!(values(&found), ["yaml"]);
        let found = complete_words(&words(&["completion", "kub"]), None);
        assert_eq!(values(&found), ["kubectl-shim"]);
    }

    #[test]
    fn no_words_means_a_new_first_word() {
        assert_eq!(
            complete_words(&[], None),
            complete_words(&words(&[""]), None)
        );
    }

    #[test]
    fn the_line_context_reads_global_flags_and_the_stack_typed_so_far() {
        let cli = GlobalArgs::augment_args(clap::Command::new(BINARY))
            .subcommand(clap::Command::new("forward").arg(clap::Arg::new("stack").long("stack")));
        let typed = [
            "forward",
            "--kubeconfig",
            "/tmp/k",
            "-n",
            "shop",
            "--stack",
            "s1",
        ];
        let line = LineContext::parse(&cli, &words(&typed), None);
        assert_eq!(line.stack.as_deref(), Some("s1"));
        let global = line.global.expect("global flags");
        assert_eq!(global.kubeconfig.as_deref(), Some(Path::new("/tmp/k")));
        assert_eq!(global.namespace.as_deref(), Some("shop"));
    }

    #[test]
    fn contexts_come_from_the_kubeconfig_on_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: one\n\
             clusters:\n- name: c1\n  cluster: {server: 'https://127.0.0.1:1'}\n\
             users:\n- name: u1\n  user: {}\n\
             contexts:\n- name: one\n  context: {cluster: c1, user: u1}\n\
             - name: two\n  context: {cluster: c1, user: u1, namespace: shop}\n",
        )
        .unwrap();
        let kubeconfig = path.to_str().unwrap();
        let found = complete_words(&words(&["--kubeconfig", kubeconfig, "--context", ""]), None);
        assert_eq!(
            found,
            [
                Candidate {
                    value: "one".into(),
                    help: Some("cluster c1".into())
                },
                Candidate {
                    value: "two".into(),
                    help: Some("cluster c1, namespace shop".into())
                },
            ]
        );
        let found = complete_words(&words(&["--kubeconfig", kubeconfig, "--user", "u"]), None);
        assert_eq!(values(&found), ["u1"]);
        let found = complete_words(&words(&["--kubeconfig", kubeconfig, "--cluster="]), None);
        assert_eq!(values(&found), ["--cluster=c1"]);
    }

    #[test]
    fn an_unreachable_cluster_gives_no_namespaces_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        // Port 1 refuses connections: the lookup must fail fast and quietly.
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: one\n\
             clusters:\n- name: c1\n  cluster: {server: 'https://127.0.0.1:1'}\n\
             users:\n- name: u1\n  user: {token: t}\n\
             contexts:\n- name: one\n  context: {cluster: c1, user: u1}\n",
        )
        .unwrap();
        let started = std::time::Instant::now();
        let found = complete_words(
            &words(&["--kubeconfig", path.to_str().unwrap(), "-n", ""]),
            None,
        );
        assert!(found.is_empty(), "{found:?}");
        assert!(started.elapsed() < CLUSTER_LOOKUP_TIMEOUT + Duration::from_secs(1));
    }

    #[test]
    fn components_come_from_devenv_yaml_in_the_working_directory() {
        let dir = shop_dir();
        // Any subcommand's argument, however deep, completes with what it attaches.
        let forward = clap::Arg::new("components").num_args(1..).add(components());
        let logs = clap::Arg::new("component").add(components_or_dev_pod());
        let cli = GlobalArgs::augment_args(clap::Command::new(BINARY)).subcommand(
            clap::Command::new("db")
                .subcommand(clap::Command::new("logs").arg(logs))
                .subcommand(clap::Command::new("forward").arg(forward)),
        );
        let found = complete_in(cli.clone(), &words(&["db", "logs", ""]), Some(dir.path()));
        assert_eq!(values(&found), ["mysql", "cache", spec::DEV_COMPONENT]);
        let found = complete_in(cli.clone(), &words(&["db", "logs", "c"]), Some(dir.path()));
        assert_eq!(values(&found), ["cache"]);
        let found = complete_in(
            cli,
            &words(&["db", "forward", "mysql", ""]),
            Some(dir.path()),
        );
        assert_eq!(values(&found), ["mysql", "cache"]);
    }

    /// A working directory whose devenv.yaml has the stack `shop` with `mysql` and `cache`.
    fn shop_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(spec::DEFAULT_FILE),
            "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {name: shop}\n\
             spec:\n  components: [{kind: mysql}, {kind: redis, name: cache}]\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn every_argument_that_names_a_live_thing_attaches_a_completer() {
        fn missing(cmd: &clap::Command, path: &str, found: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                let live = ["context", "cluster", "user", "namespace", "stack"].contains(&id)
                    || (arg.is_positional() && ["component", "components"].contains(&id))
                    || (id == "components" && arg.get_long().is_some());
                if live && arg.get::<ArgValueCandidates>().is_none() {
                    found.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                missing(sub, &format!("{path} {}", sub.get_name()), found);
            }
        }
        let mut cli = Cli::command();
        cli.build();
        let mut found = Vec::new();
        missing(&cli, BINARY, &mut found);
        assert!(found.is_empty(), "no completer: {found:?}");
    }

    #[test]
    fn logs_and_shell_reach_the_dev_pod_forward_and_credentials_do_not() {
        let dir = shop_dir();
        for (typed, expected) in [
            (
                &["shell", ""][..],
                &["mysql", "cache", spec::DEV_COMPONENT][..],
            ),
            (&["logs", ""], &["mysql", "cache", spec::DEV_COMPONENT]),
            (&["forward", ""], &["mysql", "cache"]),
            (&["credentials", ""], &["mysql", "cache"]),
        ] {
            let found = complete_words(&words(typed), Some(dir.path()));
            assert_eq!(values(&found), expected, "{typed:?}");
        }
    }

    #[test]
    fn another_stack_is_not_looked_up_in_devenv_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(spec::DEFAULT_FILE),
            "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {name: shop}\n\
             spec:\n  components: [{kind: mysql}]\n",
        )
        .unwrap();
        let line = |stack: &str| LineContext {
            // No cluster to ask: only devenv.yaml can answer.
            global: None,
            stack: Some(stack.to_owned()),
            cwd: Some(dir.path().to_owned()),
            ..LineContext::default()
        };
        let names = |found: Vec<CompletionCandidate>| -> Vec<String> {
            found
                .iter()
                .map(|c| c.get_value().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(line("shop").components()), ["mysql"]);
        assert!(line("other").components().is_empty());
    }

    #[test]
    fn component_options_complete_catalog_kinds_and_versions() {
        let cli = GlobalArgs::augment_args(clap::Command::new(BINARY)).subcommand(
            clap::Command::new("up").arg(
                clap::Arg::new("components")
                    .long("components")
                    .value_delimiter(',')
                    .add(catalog_kinds()),
            ),
        );
        let redis = catalog::find("redis").expect("redis in the catalog");
        let found = complete_in(cli.clone(), &words(&["up", "--components", "red"]), None);
        let mut expected = vec!["redis".to_owned()];
        expected.extend(redis.versions.iter().map(|v| format!("redis:{v}")));
        assert_eq!(values(&found), expected);
        // After a comma, the earlier kinds stay in the word.
        let found = complete_in(cli, &words(&["up", "--components", "mysql,redis:"]), None);
        let mysql_redis: Vec<String> = redis
            .versions
            .iter()
            .map(|v| format!("mysql,redis:{v}"))
            .collect();
        assert_eq!(values(&found), mysql_redis);
    }

    #[test]
    fn external_name_aliases_run_no_pods() {
        let service = |kind: Option<&str>| Service {
            spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
                type_: kind.map(str::to_owned),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(runs_pods(&service(Some("ClusterIP"))));
        assert!(runs_pods(&service(None)));
        assert!(!runs_pods(&service(Some("ExternalName"))));
    }

    #[test]
    fn scripts_name_the_executable_and_the_shim_calls_the_hidden_entry_point() {
        let bash = String::from_utf8(render(Target::Bash).unwrap()).unwrap();
        assert!(bash.contains(" kubectl-devenv\n"), "{bash}");
        assert!(
            !bash.contains(KUBECTL_COMPLETION_ENTRY),
            "the hidden entry point is listed"
        );
        let shim = String::from_utf8(render(Target::KubectlShim).unwrap()).unwrap();
        assert!(shim.starts_with("#!/bin/sh\n"));
        assert!(shim.contains("exec kubectl-devenv __complete \"$@\""));
        let man = String::from_utf8(render(Target::Man).unwrap()).unwrap();
        assert!(
            man.contains(".TH kubectl-devenv"),
            "{}",
            &man[..200.min(man.len())]
        );
    }

    #[test]
    fn the_man_page_covers_every_subcommand_without_dangling_references() {
        let man = String::from_utf8(render(Target::Man).unwrap()).unwrap();
        for sub in Cli::command().get_subcommands() {
            let entry = format!(".TP\n\\fBkubectl devenv {}\\fR\n", sub.get_name());
            assert!(man.contains(&entry), "{} missing", sub.get_name());
        }
        assert!(
            !man.contains(r"kubectl\-devenv\-"),
            "a reference to a per-subcommand page"
        );
        assert!(man.contains(".SH SHELL COMPLETION"));
    }

    #[test]
    fn roff_text_is_printed_literally() {
        assert_eq!(roff_text("--purge"), r"\-\-purge");
        assert_eq!(roff_text(r"C:\path"), r"C:\epath");
        assert_eq!(roff_text(".hidden"), r"\&.hidden");
        assert_eq!(roff_text("'quote"), r"\&'quote");
    }
}

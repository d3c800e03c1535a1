//! Drives real bash (with bash-completion), zsh and fish to see what they offer on TAB.
//!
//! - bash: its own completion entry point: the function `complete -p` registered for the
//!   command, called with COMP_WORDS/COMP_CWORD/COMP_LINE set as readline would set them.
//! - fish: its own entry point, `complete -C "<line>"`.
//! - zsh: has no non-interactive entry point, so an interactive zsh runs in a private tmux
//!   server; the test types the line and TAB with send-keys and reads the screen.
//!
//! Every shell runs with a throwaway HOME, no user rc files and only the PATH given.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A sandbox for shells: a temporary HOME and `bin` directory put first on PATH.
pub(crate) struct Sandbox {
    pub home: tempfile::TempDir,
    /// Extra environment for every shell (e.g. KUBECONFIG).
    pub env: Vec<(String, String)>,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        let home = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(home.path().join("bin")).unwrap();
        Self {
            home,
            env: Vec::new(),
        }
    }

    pub(crate) fn bin(&self) -> PathBuf {
        self.home.path().join("bin")
    }

    /// Makes `name` on the sandbox's PATH run `target`.
    pub(crate) fn link(&self, name: &str, target: &Path) {
        std::os::unix::fs::symlink(target, self.bin().join(name)).unwrap();
    }

    fn path_var(&self) -> String {
        format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin().display())
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("HOME", self.home.path())
            .env("PATH", self.path_var())
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.home.path());
        cmd
    }

    /// What bash offers for `line` (the word being completed is the text after the last
    /// space). `setup` loads the completion (e.g. `source <(kubectl completion bash)`).
    pub(crate) fn bash(&self, setup: &str, line: &str) -> Vec<String> {
        let script = format!(
            r#"
source /usr/share/bash-completion/bash_completion || exit 90
{setup}
# compopt only works while readline runs a completion; the functions call it for options.
compopt() {{ :; }}
line=$1
COMP_LINE=$line
COMP_POINT=${{#line}}
read -ra COMP_WORDS <<<"$line"
[[ $line == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
spec=$(complete -p "${{COMP_WORDS[0]}}") || exit 91
function=${{spec##*-F }}
function=${{function%% *}}
COMPREPLY=()
"$function" "${{COMP_WORDS[0]}}" "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#
        );
        let out = self
            .command("bash")
            .args(["--norc", "--noprofile", "-c", &script, "bash", line])
            .output()
            .expect("run bash");
        lines(&out, "bash")
    }

    /// What fish offers for `line`: candidate values, without their descriptions.
    pub(crate) fn fish(&self, setup: &str, line: &str) -> Vec<String> {
        let script = format!("{setup}\ncomplete --do-complete=\"$argv[1]\"");
        let out = self
            .command("fish")
            .args(["--no-config", "-c", &script, line])
            .output()
            .expect("run fish");
        lines(&out, "fish")
            .into_iter()
            .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
            .collect()
    }

    /// Types `line` into an interactive zsh whose .zshrc is `zshrc`, presses TAB `tabs`
    /// times, and returns the screen once every `expected` string is on it (or after 20s,
    /// so the caller's assertion shows what was there).
    pub(crate) fn zsh(&self, zshrc: &str, line: &str, tabs: usize, expected: &[&str]) -> String {
        let zdotdir = self.home.path().join("zsh");
        std::fs::create_dir_all(&zdotdir).unwrap();
        std::fs::write(
            zdotdir.join(".zshrc"),
            format!("PS1='ready%# '\nautoload -Uz compinit && compinit -u -D\n{zshrc}\n"),
        )
        .unwrap();
        let tmux = Tmux::start(self, &zdotdir);
        tmux.wait_for(&["ready"]);
        tmux.send(&["-l", line]);
        for _ in 0..tabs {
            tmux.send(&["Tab"]);
            // Let zsh finish one completion before the next TAB asks for the listing.
            std::thread::sleep(Duration::from_millis(500));
        }
        tmux.wait_for(expected)
    }
}

/// A private tmux server (own socket) running one interactive zsh; killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(sandbox: &Sandbox, zdotdir: &Path) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "devenv-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let status = sandbox
            .command("tmux")
            .env("ZDOTDIR", zdotdir)
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "200", "-y", "50", "zsh", "-i"])
            .stdin(Stdio::null())
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        Self { socket }
    }

    fn send(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "0"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "0"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, expected: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if expected.iter().all(|e| screen.contains(e)) || Instant::now() > deadline {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn lines(out: &Output, shell: &str) -> Vec<String> {
    assert!(
        out.status.success(),
        "{shell} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The words of a zsh completion listing or line, for exact membership checks.
pub(crate) fn words(screen: &str) -> Vec<&str> {
    screen.split_whitespace().collect()
}

//! One module per subcommand.

pub mod check;
pub mod completion;
pub mod credentials;
pub mod down;
pub mod env;
pub mod forward;
pub mod init;
pub mod isolation;
pub mod logs;
pub mod open;
pub mod run;
pub mod shell;
pub mod status;
pub mod sync;
pub mod up;
pub mod version;

use clap::Args;

use crate::cluster::stack;
use crate::error::{Error, Result};
use crate::spec;

/// `--stack`, the same on every command that acts on a running stack: the
/// name given, else the stack of `./devenv.yaml` when there is one. With
/// neither, the listing commands (status, forward) cover every stack and
/// the others take the only one.
#[derive(Debug, Clone, Default, Args)]
pub struct StackArg {
    /// The stack (default: the one in ./devenv.yaml, if there is one)
    #[arg(id = "stack", long = "stack", value_name = "NAME", add = completion::stacks())]
    pub name: Option<String>,
}

impl StackArg {
    /// The stack meant, by the one rule above.
    pub fn resolve(&self) -> Result<Option<String>> {
        match &self.name {
            Some(name) => match spec::name_problem(name, spec::MAX_NAME_LEN) {
                Some(problem) => Err(Error::Usage(format!(
                    "--stack: invalid name \"{name}\": {problem}"
                ))),
                None => Ok(Some(name.clone())),
            },
            None => Ok(stack::default_stack_name()),
        }
    }
}

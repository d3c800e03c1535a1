//! One module per subcommand.

pub(crate) mod check;
pub(crate) mod completion;
pub(crate) mod credentials;
pub(crate) mod down;
pub(crate) mod env;
pub(crate) mod forward;
pub(crate) mod init;
pub(crate) mod isolation;
pub(crate) mod logs;
pub(crate) mod open;
pub(crate) mod run;
pub(crate) mod shell;
pub(crate) mod status;
pub(crate) mod sync;
pub(crate) mod up;
pub(crate) mod version;

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

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

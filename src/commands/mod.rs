//! One module per subcommand.

pub mod check;
pub mod completion;
pub mod credentials;
pub mod down;
pub mod forward;
pub mod logs;
pub mod shell;
pub mod status;
pub mod sync;
pub mod up;
pub mod version;

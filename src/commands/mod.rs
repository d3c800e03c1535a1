//! One module per subcommand.

pub mod status;
pub mod version;

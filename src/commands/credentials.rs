//! `kubectl devenv credentials <component>`: the generated database
//! credentials, which no other command prints. Asking for them is the point.

use std::collections::BTreeMap;

use clap::Args;

use crate::cli::GlobalArgs;
use crate::cluster::Cluster;
use crate::cluster::stack;
use crate::commands::{StackArg, completion};
use crate::error::{Error, Result};
use crate::output;

#[derive(Debug, Args)]
pub struct CredentialsArgs {
    /// The database component (mysql, mariadb, postgres, ...)
    #[arg(value_name = "COMPONENT", add = completion::components())]
    pub component: String,

    #[command(flatten)]
    pub stack: StackArg,
}

pub(crate) async fn run(global: &GlobalArgs, args: &CredentialsArgs) -> Result<()> {
    let cluster = Cluster::connect(&global.connection()).await?;
    let stack = args.stack.resolve()?;
    let secret = stack::component_secret(&cluster, stack.as_deref(), &args.component).await?;
    let values = decode(secret.data.unwrap_or_default())?;
    output::emit(global.output, &values, |values| {
        let mut table = output::table(["KEY", "VALUE"]);
        for (key, value) in values {
            table.add_row([key, value]);
        }
        output::table_text(&table)
    })
}

fn decode(data: BTreeMap<String, k8s_openapi::ByteString>) -> Result<BTreeMap<String, String>> {
    data.into_iter()
        .map(|(key, value)| {
            String::from_utf8(value.0)
                .map(|text| (key.clone(), text))
                .map_err(|_| Error::Other(format!("credential \"{key}\" is not text")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_text_values_and_refuses_binary_ones() {
        let data = BTreeMap::from([(
            "password".to_owned(),
            k8s_openapi::ByteString(b"s3cret".to_vec()),
        )]);
        assert_eq!(decode(data).unwrap()["password"], "s3cret");
        let binary = BTreeMap::from([("key".to_owned(), k8s_openapi::ByteString(vec![0xff]))]);
        assert!(decode(binary).is_err());
    }
}

//! Snapshots of the rendered objects (tests/snapshots/*.snap): any change to
//! what `up` applies shows up as a reviewable diff. Credentials come from a
//! counter, so the snapshots are stable.

use kubectl_devenv::render::{self, Credentials, StorageMode, StoragePlan};
use kubectl_devenv::spec;

fn rendered(devenv_yaml: &str, storage: StorageMode) -> String {
    let spec = spec::parse(devenv_yaml, "snapshot").expect("valid spec");
    let mut counter = 0;
    let credentials = render::complete_credentials(&spec, &Credentials::new(), || {
        counter += 1;
        format!("generated-{counter}")
    });
    let objects = render::render(&spec, &credentials, &StoragePlan::uniform(storage));
    render::to_yaml_stream(&objects).expect("objects encode as YAML")
}

#[test]
fn research_note_stack_php_mysql_redis() {
    insta::assert_snapshot!(rendered(
        "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {name: devenv}\nspec:\n  \
         components: [{kind: php}, {kind: mysql}, {kind: redis}]\n",
        StorageMode::Persistent,
    ));
}

#[test]
fn every_catalog_component_on_arm64_with_code_mount_and_no_default_storage_class() {
    insta::assert_snapshot!(rendered(
        "apiVersion: kubectl-devenv.io/v1alpha1\nkind: DevEnv\nmetadata: {name: shop}\nspec:\n  \
         namespaces: {dev: shop-dev, test: shop-test}\n  targetArch: arm64\n  \
         dev: {version: \"8.2\", codePath: /home/dev/shop}\n  components:\n    \
         - {kind: mariadb, name: db, storage: {size: 5Gi, className: fast}}\n    \
         - {kind: postgres}\n    - {kind: memcached}\n    - {kind: redis, name: cache}\n",
        StorageMode::Ephemeral,
    ));
}

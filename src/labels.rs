//! The labels that mark what kubectl-devenv owns. Every object the tool
//! creates carries them, and nothing without them is ever changed or deleted.

pub(crate) const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub(crate) const MANAGER: &str = "kubectl-devenv";
/// The stack an object belongs to; several stacks can share one cluster.
pub(crate) const STACK: &str = "app.kubernetes.io/instance";
/// The component (`mysql`, `redis`, `php`, ...) within the stack.
pub(crate) const COMPONENT: &str = "app.kubernetes.io/component";

/// Label selector for everything kubectl-devenv manages.
pub(crate) fn managed_selector() -> String {
    format!("{MANAGED_BY}={MANAGER}")
}

/// Label selector for everything of one stack.
pub(crate) fn stack_selector(stack: &str) -> String {
    format!("{},{STACK}={stack}", managed_selector())
}

//! `kubectl devenv sync` on the test bed's real node.

//! Sync (S3 → EFS) is the `ferry-sync` crate, which the in-VPC sync function depends on alone; re-exported here for
//! `ferry sync` on a machine that mounts the file system. [`remote`]: the same request sent to that function.
pub use ferry_sync::*;

pub mod remote;

pub use remote::invoke_sync_function;

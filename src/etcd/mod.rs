//! etcd, for the cluster-wide lease store (`ipam::etcd`, its only user): the client of etcd's
//! JSON gateway and this host's settings file, `etcd.json`.

pub mod client;
pub mod config;

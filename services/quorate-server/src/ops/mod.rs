//! The operations: what the server does, as plain async functions with typed inputs, each
//! with its own error enum (mapped to an HTTP answer once, through
//! [`Refusal`](crate::error::Refusal)). They check the protocol, call the store inside one
//! transaction, and append the audit entry; they know nothing of HTTP.

pub(crate) mod jobs;
pub(crate) mod members;
pub(crate) mod nodes;
pub(crate) mod recordings;
pub(crate) mod release;
pub(crate) mod requests;
pub(crate) mod reshares;
pub(crate) mod retention;
pub mod roster;
pub(crate) mod search;
pub(crate) mod sign_in;
pub mod uploads;

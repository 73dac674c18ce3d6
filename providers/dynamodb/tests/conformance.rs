//! The DynamoDB online store against the shared online conformance suite, on moto over
//! HTTP; each case with a table prefix of its own.

mod common;

quiver_provider_testkit::online_store_suite!(common::fresh_store);

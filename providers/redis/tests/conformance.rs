//! The Redis online store against the shared online conformance suite, on the real Redis
//! (`QUIVER_TEST_REDIS_URL`, default 127.0.0.1:6379), each case in its own key namespace.

mod common;

quiver_provider_testkit::online_store_suite!(common::fresh_store);

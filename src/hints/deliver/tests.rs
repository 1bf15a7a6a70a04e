//! Tests of the delivery driver.

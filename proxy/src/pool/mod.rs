pub mod carry;
pub mod prepared;

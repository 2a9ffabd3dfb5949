//! `Z` ReadyForQuery: the backend is idle; the byte says the transaction status.

/// Transaction status as reported by ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block.
    Failed,
}

impl TxStatus {
    pub fn from_body(body: &[u8]) -> Option<TxStatus> {
        match body {
            [b'I'] => Some(TxStatus::Idle),
            [b'T'] => Some(TxStatus::InTransaction),
            [b'E'] => Some(TxStatus::Failed),
            _ => None,
        }
    }
    pub fn byte(self) -> u8 {
        match self {
            TxStatus::Idle => b'I',
            TxStatus::InTransaction => b'T',
            TxStatus::Failed => b'E',
        }
    }
}

/// A ReadyForQuery frame.
pub fn frame(status: TxStatus) -> [u8; 6] {
    [b'Z', 0, 0, 0, 5, status.byte()]
}

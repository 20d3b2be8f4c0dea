//! What stops a command: every problem at once, each naming where it is
//! and how to fix it.

/// Problems, each naming where and how to fix it, reported all at once.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n\n"))]
pub struct Problems(pub Vec<String>);

impl Problems {
    pub(crate) fn one(message: impl Into<String>) -> Problems {
        Problems(vec![message.into()])
    }
}

impl From<cascade_store::StoreError> for Problems {
    fn from(e: cascade_store::StoreError) -> Self {
        Problems::one(e.to_string())
    }
}

impl From<crate::respond::Unavailable> for Problems {
    fn from(e: crate::respond::Unavailable) -> Self {
        Problems::one(e.to_string())
    }
}

impl From<crate::delivery::DeliveryError> for Problems {
    fn from(e: crate::delivery::DeliveryError) -> Self {
        Problems::one(e.to_string())
    }
}

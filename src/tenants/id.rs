//! A tenant's id, checked once where it enters the service (a URL path, an admin
//! request, a Redis read), so everything past that point holds a valid one.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// A tenant id: 1–64 ASCII letters, digits, `-` or `_`. It becomes part of Redis
/// keys and URLs, so nothing else gets in.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

/// Not a tenant id (the text is not repeated: it may be anything a client sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tenant id is 1-64 ASCII letters, digits, '-' or '_'")]
pub struct InvalidTenantId;

impl TenantId {
    pub fn parse(id: impl Into<String>) -> Result<Self, InvalidTenantId> {
        let id = id.into();
        if Self::is_valid(&id) {
            Ok(Self(id))
        } else {
            Err(InvalidTenantId)
        }
    }

    pub fn is_valid(id: &str) -> bool {
        (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for TenantId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidTenantId;
    fn try_from(id: String) -> Result<Self, InvalidTenantId> {
        Self::parse(id)
    }
}

impl std::str::FromStr for TenantId {
    type Err = InvalidTenantId;
    fn from_str(id: &str) -> Result<Self, InvalidTenantId> {
        Self::parse(id)
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> String {
        id.0
    }
}

/// Written into Redis commands as its text (a member of the tenant sets, a script arg).
impl redis::ToRedisArgs for TenantId {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        out.write_arg(self.0.as_bytes())
    }
}

impl PartialEq<str> for TenantId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TenantId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_id_is_a_short_key_safe_name() {
        assert!(TenantId::parse("shop-1_A").is_ok());
        assert_eq!(TenantId::parse("a".repeat(64)).map(|t| t.len()), Ok(64));
        for bad in ["", "a b", "a:b", "{t}", "é", "a/b", &"a".repeat(65)] {
            assert_eq!(TenantId::parse(bad), Err(InvalidTenantId), "{bad:?}");
        }
    }

    #[test]
    fn serde_refuses_an_invalid_id() {
        let ok: TenantId = serde_json::from_str("\"shop\"").expect("valid");
        assert_eq!(ok, "shop");
        assert_eq!(serde_json::to_string(&ok).expect("serialise"), "\"shop\"");
        assert!(serde_json::from_str::<TenantId>("\"a:b\"").is_err());
    }
}

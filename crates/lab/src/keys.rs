//! The lab's Redis key names, built here and nowhere else (the production keys live in
//! `issuing/keys.rs`; these never share a name with them).
//!
//! Under the service's `REDIS_KEY_PREFIX`, with the lab coupon as the hash tag so that the
//! `redis-lua` script's two keys share a slot on Redis Cluster:
//!
//! | key                              | type   | holds                                  |
//! |----------------------------------|--------|----------------------------------------|
//! | `<prefix>:lab:{<coupon>}:quantity` | string | units left (`redis-lua`)             |
//! | `<prefix>:lab:{<coupon>}:users`    | hash   | user id -> claim number (`redis-lua`) |
//! | `<prefix>:lab:{<coupon>}:lock`     | string | the `redis-lock` lock's token         |

use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct LabKeys {
    prefix: String,
}

impl LabKeys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: format!("{prefix}:lab:"),
        }
    }

    fn key(&self, coupon: Uuid, what: &str) -> String {
        format!("{}{{{coupon}}}:{what}", self.prefix)
    }

    pub fn quantity(&self, coupon: Uuid) -> String {
        self.key(coupon, "quantity")
    }

    pub fn users(&self, coupon: Uuid) -> String {
        self.key(coupon, "users")
    }

    pub fn lock(&self, coupon: Uuid) -> String {
        self.key(coupon, "lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_prefix_and_the_coupon_as_hash_tag() {
        let keys = LabKeys::new("coupon");
        let coupon = Uuid::nil();
        assert_eq!(
            keys.quantity(coupon),
            "coupon:lab:{00000000-0000-0000-0000-000000000000}:quantity"
        );
        assert!(keys.users(coupon).ends_with("}:users"));
        assert!(keys.lock(coupon).ends_with("}:lock"));
    }
}

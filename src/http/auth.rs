//! Who the user is.
//!
//! Two modes (`AUTH_MODE`):
//!
//! - `body` (the default): the user id in the request is trusted as it is. Only for callers
//!   behind a gateway that authenticates users and sets it; anyone reaching the service directly
//!   can claim a coupon for anyone.
//! - `jwt`: every user request carries `Authorization: Bearer <JWT>`, verified with an HS256
//!   secret or an RS256/ES256 public key; the user is the token's `sub`. A request that also
//!   names a user (in the body or the path) must name that same user, or it is refused (403).
//!
//! Exactly one algorithm is accepted, the one the key is for: a token signed with another one
//! (`alg: none`, or HS256 with the public key as the secret) is refused before any signature
//! check. jsonwebtoken does the verification; nothing here touches cryptography.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use anyhow::Context;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, TokenProblem};
use crate::config::{AuthMode, Settings};
use crate::domain::UserId;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 30;

/// Longer tokens are refused unread: a user token is a few hundred bytes.
const MAX_TOKEN_BYTES: usize = 8192;

/// Verifies user tokens in `jwt` mode.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl JwtVerifier {
    /// `None` in `body` mode. Fails at start-up, not on the first request, when `jwt` mode has
    /// no key, two keys, or a key file that cannot be read.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Option<Self>> {
        if settings.auth_mode == AuthMode::Body {
            return Ok(None);
        }
        let secret = settings.jwt_secret.as_deref().filter(|s| !s.is_empty());
        let (key, algorithm) = match (secret, &settings.jwt_public_key_file) {
            (Some(secret), None) => {
                if secret.len() < 32 {
                    tracing::warn!("JWT_SECRET is shorter than 32 bytes: easy to guess offline");
                }
                (DecodingKey::from_secret(secret.as_bytes()), Algorithm::HS256)
            }
            (None, Some(path)) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("cannot read JWT_PUBLIC_KEY_FILE {}", path.display()))?;
                public_key(&pem).with_context(|| format!("JWT_PUBLIC_KEY_FILE {}", path.display()))?
            }
            (Some(_), Some(_)) => anyhow::bail!("AUTH_MODE=jwt: set JWT_SECRET or JWT_PUBLIC_KEY_FILE, not both"),
            (None, None) => {
                anyhow::bail!("AUTH_MODE=jwt needs JWT_SECRET (HS256) or JWT_PUBLIC_KEY_FILE (RS256/ES256)")
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = settings.jwt_issuer.as_deref().filter(|s| !s.is_empty()) {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match settings.jwt_audience.as_deref().filter(|s| !s.is_empty()) {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // No audience configured: a token's `aud`, if any, is not checked.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        tracing::info!(?algorithm, "user tokens required (AUTH_MODE=jwt)");
        Ok(Some(Self { key, validation }))
    }

    /// The user a token was issued to, if it verifies.
    pub fn verify(&self, token: &str) -> Result<UserId, TokenProblem> {
        if !well_formed(token) {
            return Err(TokenProblem::Malformed);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenProblem::Expired,
            // Anything else about a token of the right shape: a forged signature, another
            // algorithm (`none` is not even a name jsonwebtoken knows), undecodable parts, the
            // wrong issuer or audience, no `sub`.
            _ => TokenProblem::Invalid,
        })?;
        UserId::parse(&data.claims.sub).map_err(|_| TokenProblem::Invalid)
    }
}

/// The shape of a compact JWS: three base64url parts, the first two non-empty (an unsigned
/// `alg: none` token has an empty third part: well-formed, and refused as invalid).
fn well_formed(token: &str) -> bool {
    let b64url = |p: &str| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let parts: Vec<&str> = token.split('.').collect();
    token.len() <= MAX_TOKEN_BYTES
        && parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && parts.iter().all(|p| b64url(p))
}

/// An RSA key means RS256, an EC key ES256; nothing else is accepted.
fn public_key(pem: &[u8]) -> anyhow::Result<(DecodingKey, Algorithm)> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((key, Algorithm::RS256));
    }
    DecodingKey::from_ec_pem(pem)
        .map(|key| (key, Algorithm::ES256))
        .map_err(|_| anyhow::anyhow!("not a PEM RSA or EC (P-256) public key"))
}

/// Who is asking: in `body` mode whoever the request names, in `jwt` mode the verified user.
pub enum Caller {
    Trusted,
    Verified(UserId),
}

impl Caller {
    /// The user this request acts for. `named` is the user the request names (body or path), if
    /// any: required in `body` mode; in `jwt` mode optional, and it must be the token's user.
    pub fn user(&self, named: Option<&str>) -> Result<UserId, ApiError> {
        let named = named
            .map(|n| UserId::parse(n).map_err(|e| ApiError::invalid("user_id", e)))
            .transpose()?;
        match (self, named) {
            (Self::Trusted, Some(user)) => Ok(user),
            (Self::Trusted, None) => Err(ApiError::invalid("user_id", "is required")),
            (Self::Verified(user), Some(named)) if named != *user => Err(ApiError::UserMismatch),
            (Self::Verified(user), _) => Ok(user.clone()),
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<AppState>>().and_then(|s| s.jwt.as_deref());
        let Some(verifier) = verifier else {
            return ready(Ok(Self::Trusted));
        };
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        ready(match token {
            None => Err(ApiError::Unauthenticated(TokenProblem::Missing)),
            Some(token) => verifier
                .verify(token)
                .map(Self::Verified)
                .map_err(ApiError::Unauthenticated),
        })
    }
}

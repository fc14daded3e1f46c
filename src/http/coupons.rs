//! A user's coupons and redemption, from Postgres.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::JsonBody;
use crate::domain::{Coupon, CouponId, UserId};
use crate::store::coupons::{self, Redemption};

/// A user's coupons.
#[derive(Serialize, ToSchema)]
pub struct CouponList {
    coupons: Vec<Coupon>,
}

/// A user's coupons, from Postgres, each with when it was redeemed.
///
/// Coupons appear here once the writer has stored them, normally well under a second after
/// they are issued. With `AUTH_MODE=jwt`, only the token's user may list their coupons.
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}/coupons",
    tag = "coupons",
    params(("user_id" = UserId, Path, description = "The user")),
    responses((status = 200, description = "The user's coupons, newest first (at most 1,000)", body = CouponList)),
)]
pub async fn for_user(
    state: web::Data<AppState>,
    caller: Caller,
    user: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user: UserId = caller.user(Some(&user))?;
    let coupons = coupons::for_user(&state.db, &user).await?;
    Ok(HttpResponse::Ok().json(CouponList { coupons }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// The user redeeming; must be the coupon's holder. Required with `AUTH_MODE=body`; with
    /// `jwt` optional, and if given it must be the token's. (The document served says which.)
    #[serde(default)]
    #[schema(value_type = UserId, required = true)]
    user_id: Option<String>,
}

/// Redeem (use) a coupon, once, by its holder, before it expires.
#[utoipa::path(
    post,
    path = "/v1/coupons/{coupon_id}/redeem",
    tag = "coupons",
    params(("coupon_id" = CouponId, Path, description = "The coupon id")),
    request_body = RedeemRequest,
    responses((status = 200, description = "Redeemed: the coupon with `redeemed_at` set", body = Coupon)),
)]
#[tracing::instrument(name = "redeem", skip_all, fields(coupon_id = %coupon_id, outcome))]
pub async fn redeem(
    state: web::Data<AppState>,
    caller: Caller,
    coupon_id: web::Path<String>,
    body: JsonBody<RedeemRequest>,
) -> Result<HttpResponse, ApiError> {
    let coupon = CouponId::parse(&coupon_id).map_err(|e| ApiError::invalid("coupon_id", e))?;
    let user = caller.user(body.0.user_id.as_deref())?;
    state.limits.check_user(&user)?;
    let answer = match coupons::redeem(&state.db, coupon, &user).await? {
        Redemption::Redeemed(c) => Ok(HttpResponse::Ok().json(c)),
        Redemption::NotFound => Err(ApiError::CouponNotFound),
        Redemption::NotOwner => Err(ApiError::NotOwner),
        Redemption::AlreadyRedeemed(_) => Err(ApiError::AlreadyRedeemed),
        Redemption::Expired(_) => Err(ApiError::Expired),
    };
    tracing::Span::current().record("outcome", answer.as_ref().err().map_or("redeemed", ApiError::code));
    answer
}

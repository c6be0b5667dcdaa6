//! Merchant result codes: the `resultCode` of every answer (docs/protocol.md, result-codes §1).

use std::fmt;

/// A six-digit merchant result code. `000000` is the only success; `000004` is an accepted
/// intermediate state where the activity defines one. Every other code makes the marketplace
/// retry on its normal schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// `000000` success (also idempotent repeats and debug state-dependent failures, D6).
    Success,
    /// `000001` authentication failed: bad or missing signature, replayed nonce (D1–D4).
    AuthFailed,
    /// `000002` invalid request parameter: timestamp, nonce, malformed body, missing field (D13).
    InvalidParam,
    /// `000003` instance ID (or license code) does not exist (real traffic only).
    InstanceNotFound,
    /// `000004` request being processed (asynchronous creation, duplicate in flight).
    Processing,
    /// `000005` other internal service error; also a `changeInstanceCheck` refusal (D12).
    InternalError,
    /// `000100` no resource left to allocate an instance.
    NoResource,
    /// `000101` mobile number not provided or already in use.
    MobileUnavailable,
    /// `000102` e-mail address not provided or already in use.
    EmailUnavailable,
    /// `000103` product already purchased; cannot be bought twice.
    AlreadyPurchased,
    /// `000104` the product's own service failed.
    ProductServiceFailed,
    /// `000105` this account already holds the benefit.
    BenefitAlreadyHeld,
    /// `000106` product resources sold out.
    SoldOut,
    /// `000107` the SaaS e-mail domain is already taken.
    EmailDomainTaken,
    /// `000900` no License quota remains on the order in force.
    LicenseQuotaExhausted,
    /// `000901` application outside the validity period of the current order.
    OutsideValidity,
    /// `000902` a periodic License needs an expiry time.
    ExpireTimeRequired,
    /// `000903` the product needs a device fingerprint and none was given.
    DeviceFingerprintRequired,
}

impl ResultCode {
    /// Every code, in numeric order.
    pub const ALL: &'static [ResultCode] = &[
        ResultCode::Success,
        ResultCode::AuthFailed,
        ResultCode::InvalidParam,
        ResultCode::InstanceNotFound,
        ResultCode::Processing,
        ResultCode::InternalError,
        ResultCode::NoResource,
        ResultCode::MobileUnavailable,
        ResultCode::EmailUnavailable,
        ResultCode::AlreadyPurchased,
        ResultCode::ProductServiceFailed,
        ResultCode::BenefitAlreadyHeld,
        ResultCode::SoldOut,
        ResultCode::EmailDomainTaken,
        ResultCode::LicenseQuotaExhausted,
        ResultCode::OutsideValidity,
        ResultCode::ExpireTimeRequired,
        ResultCode::DeviceFingerprintRequired,
    ];

    /// The six-digit wire value, e.g. `"000002"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ResultCode::Success => "000000",
            ResultCode::AuthFailed => "000001",
            ResultCode::InvalidParam => "000002",
            ResultCode::InstanceNotFound => "000003",
            ResultCode::Processing => "000004",
            ResultCode::InternalError => "000005",
            ResultCode::NoResource => "000100",
            ResultCode::MobileUnavailable => "000101",
            ResultCode::EmailUnavailable => "000102",
            ResultCode::AlreadyPurchased => "000103",
            ResultCode::ProductServiceFailed => "000104",
            ResultCode::BenefitAlreadyHeld => "000105",
            ResultCode::SoldOut => "000106",
            ResultCode::EmailDomainTaken => "000107",
            ResultCode::LicenseQuotaExhausted => "000900",
            ResultCode::OutsideValidity => "000901",
            ResultCode::ExpireTimeRequired => "000902",
            ResultCode::DeviceFingerprintRequired => "000903",
        }
    }

    /// The default `resultMsg`: Huawei's sample texts for the codes it uses (docs/protocol.md (result-codes)
    /// §1.5), short English texts from the code tables for the others.
    pub fn default_message(&self) -> &'static str {
        match self {
            ResultCode::Success => "success.",
            ResultCode::AuthFailed => "token is invalid",
            ResultCode::InvalidParam => "param is invalid",
            ResultCode::InstanceNotFound => "instance is invalid",
            ResultCode::Processing => "request is processing",
            ResultCode::InternalError => "other inner error",
            ResultCode::NoResource => "no available resource",
            ResultCode::MobileUnavailable => "mobile number is not provided or already in use",
            ResultCode::EmailUnavailable => "email address is not provided or already in use",
            ResultCode::AlreadyPurchased => "product already purchased, cannot be bought twice",
            ResultCode::ProductServiceFailed => "product service failed",
            ResultCode::BenefitAlreadyHeld => "this account already holds the benefit",
            ResultCode::SoldOut => "product resources are sold out",
            ResultCode::EmailDomainTaken => "the email domain is already in use",
            ResultCode::LicenseQuotaExhausted => "no license quota left on the current order",
            ResultCode::OutsideValidity => "outside the validity period of the current order",
            ResultCode::ExpireTimeRequired => "a periodic license requires expireTime",
            ResultCode::DeviceFingerprintRequired => "deviceFingerprint is required",
        }
    }

    /// Parses a six-digit wire value; unknown codes are `None`.
    pub fn parse(s: &str) -> Option<ResultCode> {
        ResultCode::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// `true` only for `000000`.
    pub fn is_success(&self) -> bool {
        *self == ResultCode::Success
    }

    /// `true` for the instance-creation refusals `000100`–`000107`, which a product may answer
    /// to a provisioning request.
    pub fn is_creation_refusal(&self) -> bool {
        matches!(
            self,
            ResultCode::NoResource
                | ResultCode::MobileUnavailable
                | ResultCode::EmailUnavailable
                | ResultCode::AlreadyPurchased
                | ResultCode::ProductServiceFailed
                | ResultCode::BenefitAlreadyHeld
                | ResultCode::SoldOut
                | ResultCode::EmailDomainTaken
        )
    }

    /// `true` for the codes the marketplace does not treat as a failure: `000000` and `000004`.
    pub fn is_accepted(&self) -> bool {
        matches!(self, ResultCode::Success | ResultCode::Processing)
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_six_digits() {
        for code in ResultCode::ALL {
            assert_eq!(ResultCode::parse(code.as_str()), Some(*code));
            assert_eq!(code.as_str().len(), 6);
            assert!(code.as_str().bytes().all(|b| b.is_ascii_digit()));
            assert!(code.default_message().is_ascii() && !code.default_message().is_empty());
        }
        assert_eq!(ResultCode::parse("000006"), None);
        assert_eq!(ResultCode::Success.default_message(), "success.");
        assert_eq!(ResultCode::InvalidParam.to_string(), "000002");
    }
}

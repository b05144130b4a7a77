//! Wallet sign-in: a Stellar account signs a server challenge (SEP-53) instead of typing a password,
//! then the shared sign-in path starts the session exactly as for passwords.

use async_trait::async_trait;
use ed25519_dalek::Signature;
use serde::Serialize;

use super::{unix_now, AuthError, AuthService, ClientInfo, Credential, Issued, Proof, SignInMethod};
use crate::stellar::{parse_signature, AccountId, ChallengeMessage, WalletInputError};
use crate::store::{Challenge, StoreError, UnixTime, User};
use crate::tokens::{random_bytes, random_id};

/// A challenge as the client receives it.
#[derive(Clone, Debug, Serialize)]
pub struct WalletChallenge {
    /// The exact text to sign (SEP-53).
    pub message: String,
    /// When the server stops accepting its signature (seconds since the epoch).
    pub expires_at: UnixTime,
}

impl AuthService {
    /// Issues a single-use challenge for `account` to sign. Each challenge is charged to the login
    /// throttle like a failed login (per account from this address, and per address) until a
    /// sign-in of the account succeeds, so issuing them is throttled like password guesses.
    #[tracing::instrument(skip(self, client), fields(client_ip = client.ip.as_deref()))]
    pub async fn wallet_challenge(&self, account: &str, client: &ClientInfo) -> Result<WalletChallenge, AuthError> {
        let origin = self.wallet_origin()?;
        let account = parse_account(account)?;
        let now = unix_now();
        let subject = account.username();
        let attempt =
            self.inner.throttle.reserve(self.login_throttle_keys(&subject, client), now).map_err(|throttled| {
                tracing::warn!(subject, "wallet challenge throttled");
                super::rate_limited(throttled)
            })?;
        let nonce: String = random_bytes::<16>().iter().map(|byte| format!("{byte:02x}")).collect();
        let expires_at = now + self.inner.settings.wallet_challenge_ttl_secs;
        let message = ChallengeMessage::new(&origin, &account, &nonce, now, expires_at);
        let challenge =
            Challenge { nonce, account: account.as_str().to_owned(), message: message.text.clone(), expires_at };
        if let Err(error) = self.inner.store.put_challenge(&challenge, now).await {
            attempt.refund();
            return Err(error.into());
        }
        // Counted like a failed login until a sign-in of the account succeeds and resets its count.
        attempt.failed();
        Ok(WalletChallenge { message: message.text, expires_at })
    }

    /// Checks a SEP-53 signature of an issued challenge, consumes the challenge, and starts a
    /// session for the account's user, creating the user at the first sign-in unless wallet signup
    /// is off.
    #[tracing::instrument(skip(self, message, signature, client), fields(client_ip = client.ip.as_deref()))]
    pub async fn wallet_login(
        &self,
        account: &str,
        message: &str,
        signature: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let origin = self.wallet_origin()?;
        let account = parse_account(account)?;
        let invalid = |error: WalletInputError| AuthError::InvalidInput(error.to_string());
        let nonce = ChallengeMessage::nonce_of(message).map_err(invalid)?;
        let signature = parse_signature(signature).map_err(invalid)?;
        let credential = WalletCredential {
            username: account.username(),
            account,
            domain: crate::stellar::domain_of(&origin),
            message,
            nonce,
            signature,
        };
        self.sign_in(&credential, client).await
    }

    /// Creates the user of a Stellar account (the `user add G…` command). Wallet users have no
    /// password; their username is `stellar:` followed by the account id.
    pub async fn create_wallet_user(&self, account: &str) -> Result<super::UserView, AuthError> {
        let account = AccountId::from_username(account)
            .ok_or_else(|| AuthError::InvalidInput(WalletInputError::Account.to_string()))?;
        let user = wallet_user(&account);
        match self.inner.store.create_user(&user).await {
            Ok(()) => Ok(super::UserView::from(&user)),
            Err(StoreError::Conflict) => Err(AuthError::UsernameTaken),
            Err(error) => Err(error.into()),
        }
    }

    /// The origin challenges bind: the first public origin. Unknown only for a service that serves
    /// no listener of its own and has no `REAUTH_PUBLIC_ORIGIN`; wallet sign-in is off (404) there.
    fn wallet_origin(&self) -> Result<String, AuthError> {
        self.public_origin().ok_or(AuthError::NotFound)
    }
}

fn parse_account(account: &str) -> Result<AccountId, AuthError> {
    AccountId::parse(account).map_err(|error| AuthError::InvalidInput(error.to_string()))
}

/// A new, active wallet user. The empty password hash matches no password.
fn wallet_user(account: &AccountId) -> User {
    User {
        id: random_id(),
        username: account.username(),
        password_hash: String::new(),
        active: true,
        created_at: unix_now(),
    }
}

/// A signature of a challenge message, already well-formed.
struct WalletCredential<'a> {
    account: AccountId,
    username: String,
    /// The domain challenges of this server bind.
    domain: &'a str,
    message: &'a str,
    nonce: &'a str,
    signature: Signature,
}

#[async_trait]
impl Credential for WalletCredential<'_> {
    fn method(&self) -> SignInMethod {
        SignInMethod::Wallet
    }

    fn subject(&self) -> &str {
        &self.username
    }

    async fn check(&self, service: &AuthService) -> Result<Proof, AuthError> {
        let store = &service.inner.store;
        let user = store.user_by_name(&self.username).await?;
        // The signature first: a wrong one must not consume the challenge.
        if !self.account.verify_sep53(self.message, &self.signature) {
            return Ok(Proof::Fails { user, detail: "bad_signature" });
        }
        // Signed, but for another site (refused even when a store shared with it knows the nonce),
        // or naming another account: refused without using up the challenge it names.
        if ChallengeMessage::domain_of_text(self.message) != Some(self.domain) {
            return Ok(Proof::Fails { user, detail: "wrong_domain" });
        }
        if ChallengeMessage::account_of_text(self.message) != Some(self.account.as_str()) {
            return Ok(Proof::Fails { user, detail: "wrong_account" });
        }
        match store.take_challenge(self.nonce, unix_now()).await? {
            Some(challenge) if challenge.account == self.account.as_str() && challenge.message == self.message => {}
            Some(_) => return Ok(Proof::Fails { user, detail: "challenge_mismatch" }),
            None => return Ok(Proof::Fails { user, detail: "unknown_expired_or_used_challenge" }),
        }
        if let Some(user) = user {
            return Ok(Proof::Holds(user));
        }
        if !service.inner.settings.wallet_signup {
            return Ok(Proof::Fails { user: None, detail: "wallet_signup_closed" });
        }
        let new_user = wallet_user(&self.account);
        match store.create_user(&new_user).await {
            Ok(()) => Ok(Proof::Holds(new_user)),
            // A concurrent first sign-in of the same account (with another challenge) created it.
            Err(StoreError::Conflict) => match store.user_by_name(&self.username).await? {
                Some(user) => Ok(Proof::Holds(user)),
                None => Err(StoreError::Conflict.into()),
            },
            Err(error) => Err(error.into()),
        }
    }
}

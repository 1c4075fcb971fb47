//! Invitation and sign-in link email, sent over SMTP (`TOLLGATE_SMTP_URL`); without it,
//! invitations are logged for local use and sign-in links are not sent.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Sender address used when none is configured.
pub const DEFAULT_FROM: &str = "Tollgate <tollgate@localhost>";

/// The email settings `tollgate-admin` and `tollgate up` take alike.
#[derive(Debug, Clone, clap::Args)]
pub struct MailSettings {
    /// SMTP server for invitation emails, in lettre's URL form (`smtp://host:2525`,
    /// `smtps://user:pass@host`); unset, the accept instructions are logged instead.
    #[arg(long, env = "TOLLGATE_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// Sender of invitation emails.
    #[arg(long, env = "TOLLGATE_SMTP_FROM", default_value = DEFAULT_FROM)]
    pub smtp_from: String,
    /// Base URL of the admin API as invitees reach it (for the accept link);
    /// defaults to `http://<the admin listen address>`.
    #[arg(long, env = "TOLLGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
}

impl MailSettings {
    /// The mailer these settings describe, for an admin API listening on `listen`.
    pub fn mailer(&self, listen: std::net::SocketAddr) -> Result<Mailer, MailError> {
        let public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"));
        match self.smtp_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => Mailer::smtp(url, &self.smtp_from, &public_url),
            None => Ok(Mailer::log_only(&public_url)),
        }
    }
}

/// Why mail could not be configured or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `TOLLGATE_SMTP_URL` is not a valid lettre SMTP URL.
    #[error("TOLLGATE_SMTP_URL: {0}")]
    Url(lettre::transport::smtp::Error),
    /// An address is not a valid mailbox.
    #[error("{field}: {source}")]
    Address {
        /// The setting or field holding it.
        field: &'static str,
        /// The parse error.
        source: lettre::address::AddressError,
    },
    /// Building the message failed.
    #[error("building the message: {0}")]
    Build(#[from] lettre::error::Error),
    /// The SMTP server refused or could not be reached.
    #[error("SMTP: {0}")]
    Send(#[from] lettre::transport::smtp::Error),
}

/// Sends invitation emails.
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    /// Where the admin service is reached, without a trailing slash.
    public_url: String,
}

impl Mailer {
    /// A mailer that only logs the accept instructions (no SMTP configured).
    pub fn log_only(public_url: &str) -> Self {
        Mailer {
            transport: None,
            from: DEFAULT_FROM.parse().expect("the default sender parses"),
            public_url: public_url.trim_end_matches('/').to_string(),
        }
    }

    /// A mailer sending through `smtp_url` (lettre's form: `smtp://host:port`,
    /// `smtps://user:pass@host`, `smtp://host?tls=required`) as `from`.
    pub fn smtp(smtp_url: &str, from: &str, public_url: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(MailError::Url)?
            .build();
        let from = from.parse().map_err(|source| MailError::Address {
            field: "TOLLGATE_SMTP_FROM",
            source,
        })?;
        Ok(Mailer {
            transport: Some(transport),
            from,
            public_url: public_url.trim_end_matches('/').to_string(),
        })
    }

    /// Sends `secret` for an invitation to `org_name` to `to`; without SMTP, logs it.
    pub async fn send_invitation(
        &self,
        to: &str,
        org_name: &str,
        role: &str,
        secret: &str,
    ) -> Result<(), MailError> {
        let Some(transport) = &self.transport else {
            tracing::info!(
                to,
                org = org_name,
                accept_url = %self.accept_url(),
                token = secret,
                "invitation email not sent (TOLLGATE_SMTP_URL unset): accept with POST accept_url {{\"token\": token}}"
            );
            return Ok(());
        };
        let body = format!(
            "You are invited to join {org_name} on Tollgate as {role}.\n\n\
             Accept with:\n\n\
             POST {url}\n\
             {{\"token\": \"{secret}\"}}\n\n\
             If you already have a Tollgate account, send your own bearer token\n\
             with the request. The invitation is single use; ignore this email\n\
             if you did not expect it.\n",
            url = self.accept_url(),
        );
        let subject = format!("Invitation to {org_name} on Tollgate");
        self.deliver(transport, to, subject, body).await
    }

    /// Mails a one-time dashboard sign-in link carrying `secret` to `to`. Without
    /// SMTP nothing is sent and the secret is not logged: the link would be a
    /// credential in the logs.
    pub async fn send_sign_in_link(
        &self,
        to: &str,
        secret: &str,
        valid_minutes: i64,
    ) -> Result<(), MailError> {
        let Some(transport) = &self.transport else {
            tracing::warn!("sign-in link not sent: TOLLGATE_SMTP_URL is unset");
            return Ok(());
        };
        let body = format!(
            "Open this link to sign in to the Tollgate dashboard:\n\n\
             {url}/sign-in/email/{secret}\n\n\
             It works once, for {valid_minutes} minutes. If you did not ask for it,\n\
             ignore this email: nobody can sign in without the link.\n",
            url = self.public_url,
        );
        let subject = "Your Tollgate sign-in link".to_string();
        self.deliver(transport, to, subject, body).await
    }

    /// Where invitations are accepted.
    fn accept_url(&self) -> String {
        format!("{}/api/invitations/accept", self.public_url)
    }

    /// Sends one plain-text message to `to`.
    async fn deliver(
        &self,
        transport: &AsyncSmtpTransport<Tokio1Executor>,
        to: &str,
        subject: String,
        body: String,
    ) -> Result<(), MailError> {
        // A bare address, never "Name <addr>": the recipient is exactly the stored email.
        let to: Address = to.parse().map_err(|source| MailError::Address {
            field: "email",
            source,
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)?;
        transport.send(message).await?;
        Ok(())
    }
}

"""Sending e-mail: one message at a time to an SMTP server, failures sorted into those worth
retrying and those that are not."""

from adapters.mail.smtp import MailFailed, SmtpMailer, SmtpTarget

__all__ = ["MailFailed", "SmtpMailer", "SmtpTarget"]

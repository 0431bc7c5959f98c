//! optin

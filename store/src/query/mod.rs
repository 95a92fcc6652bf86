//! The query IR (DESIGN §6), its front ends (text language, raw MongoDB
//! filter JSON) and its execution on each backend. Being built (issue 6).

pub mod doc;

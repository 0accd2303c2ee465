"""Mail as bytes: the MIME message of a digest or a transactional mail, headers and all."""

"""The solver base class and the update rules solver files share."""

// Context the README's launcher snippet assumes: nothing beyond its includes.

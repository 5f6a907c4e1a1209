// Context the README's store snippet assumes.
int rank = 0, worldSize = 1;
std::string myAddress = "10.0.0.2:41000";
std::vector<std::string> addressKeys = {"addr/0"};

// Context the README's communicator snippet assumes.
int rank = 0, size = 1, peer = 0;
std::vector<uint8_t> mine(8), all(8);
size_t bytesPerRank = 8, bytes = 8, n = 4;
uint8_t buf[8], in[8];
uint16_t x[4];

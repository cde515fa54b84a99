/* An empty program: linked with a whole library (meson link_whole, i.e.
 * --whole-archive), so that every object of it is in the program and
 * check-symbols sees everything the library could bring into a device
 * image. */
int main(void)
{
    return 0;
}
